"""Turn a pytest-benchmark JSON into benches/results.md and benches/results.png.

    python benches/report.py bench.json           # from an existing run
    python benches/report.py --run                # run the suite, then report
                                                  # (writes benches/bench.json)

Options: ``--stat mean|median|min`` (what the tables and ratios use; default
mean), ``--out-dir DIR`` (default: this folder), ``--no-png``.

Every decode group gets a table: each implementation's time per decoded
corpus, its ratio to hikari's path (hikari 2.7 with orjson on the same
compression; < 1 is faster than hikari) and to the floor (decompress +
orjson.loads and nothing else), and throughput in MB of decompressed JSON per
second. The machine is noisy: compare ratios within one run, not absolute
times across runs. The drop-in groups (test_compat.py: discord.py and hikari
stock vs with ``mijcodec.compat.<library>.install()``) get a summary of the
ratios installed / stock (mean, median, min) and one table each, with that
ratio instead of the hikari/floor ones. Memory groups get a table of the bytes
memprobe.py measured.
The chart shows the ratios to hikari, one panel per group. Works without a
display (matplotlib's Agg backend); without matplotlib it writes only the
Markdown and says so.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
from collections import OrderedDict
from typing import Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# issue 3's benchmark targets: (group, numerator impl, ratio to hikari at most)
TARGETS = [
    ("zlib realistic full decode", "mijcodec (compiled)", 0.85, "compiled, every d read"),
    ("zlib presence-heavy, only MESSAGE_CREATE read", "mijcodec (compiled) MESSAGE_CREATE only", 0.50, "compiled, presence-heavy, only MESSAGE_CREATE's d"),
    ("zlib realistic full decode", "mijcodec (fallback)", 1.10, "fallback, every d read"),
]
FAMILY_COLORS = {"ours": "#2b7bba", "hikari": "#e07b39", "discord.py": "#7d5ba6", "stdlib": "#8c8c8c", "floor": "#4daf4a"}


def _load(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _groups(data: dict) -> "OrderedDict[str, list]":
    groups: OrderedDict[str, list] = OrderedDict()
    for b in data["benchmarks"]:
        groups.setdefault(b.get("group") or b["name"], []).append(b)
    return groups


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f}"


def _mib(n: Optional[float]) -> str:
    if n is None:
        return "n/a"
    if abs(n) < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / (1024 * 1024):.2f} MiB"


def _ref(benches: list, role: str) -> Optional[dict]:
    for b in benches:
        if b["extra_info"].get("role") == role:
            return b
    return None


def _is_compat(benches: list) -> bool:
    """A drop-in group of test_compat.py: one library stock vs install()."""
    return any(b["extra_info"].get("compat") for b in benches)


def _compat_rows(benches: list) -> tuple[Optional[dict], list[dict]]:
    stock = _ref(benches, "stock")
    installed = [b for b in benches if b["extra_info"].get("role") == "installed"]
    return stock, installed


def _compat_table(group: str, benches: list, stat: str) -> list[str]:
    stock, _ = _compat_rows(benches)
    ref = stock["stats"][stat] if stock else None
    rows = sorted(benches, key=lambda b: b["stats"][stat])
    info0 = rows[0]["extra_info"]
    cols = [stat] + [x for x in ("mean", "median", "min") if x != stat]
    lines = [
        f"### {group}",
        "",
        f"Corpus: `{info0['mix']}`, {info0['payloads']} payloads, {info0['payload_bytes'] / 1e6:.2f} MB of JSON, "
        f"{info0['wire_bytes'] / 1e6:.2f} MB on the wire ({info0['transport']}); {rows[0]['stats']['rounds']} rounds each.",
        "",
        "| implementation | " + " | ".join(f"{x} ms" for x in cols) + f" | stddev ms | installed / stock ({stat}) | MB/s |",
        "|---|" + "---:|" * (len(cols) + 3),
    ]
    for b in rows:
        s = b["stats"]
        info = b["extra_info"]
        v = s[stat]
        name = f"**{info['impl']}**" if info.get("role") == "installed" else info["impl"]
        ratio = f"{v / ref:.2f}x" if ref and info.get("role") == "installed" else ("1.00x" if b is stock else "-")
        lines.append(
            f"| {name} | " + " | ".join(_ms(s[x]) for x in cols) + f" | {_ms(s['stddev'])} | {ratio} | "
            f"{info['payload_bytes'] / 1e6 / v:.0f} |"
        )
    lines += ["", f"Reference: stock = {stock['extra_info']['impl']}." if stock else "No stock reference in this group.", ""]
    return lines


def _compat_summary(groups: "OrderedDict[str, list]") -> list[str]:
    """Issue 5: every drop-in, installed / stock on the same frames, by mean, median and min."""
    rows = []
    for group, benches in groups.items():
        if not _is_compat(benches):
            continue
        stock, installed = _compat_rows(benches)
        for b in sorted(installed, key=lambda b: b["extra_info"]["impl"]):
            info = b["extra_info"]
            if stock is None:
                cells = ["no stock run"] * 3
            else:
                cells = [f"{b['stats'][x] / stock['stats'][x]:.2f}x" for x in ("mean", "median", "min")]
            impl = info["impl"].split(": ", 1)[-1]
            rows.append(f"| {info['compat']} | {info['transport']} | {impl} | " + " | ".join(cells) + " |")
    if not rows:
        return []
    return [
        "## Drop-in adapters (issue 5): install() / stock",
        "",
        "Each library's own decode path on the same frames, once stock and once with "
        "`mijcodec.compat.<library>.install()` in effect (benches/test_compat.py); < 1 means "
        "install() made it faster. Realistic traffic.",
        "",
        "| library | compression | decoded by | by mean | by median | by min |",
        "|---|---|---|---:|---:|---:|",
        *rows,
        "",
    ]


def _is_memory(benches: list) -> bool:
    return all(b["extra_info"].get("role") == "memory" for b in benches)


def _decode_table(group: str, benches: list, stat: str) -> tuple[list[str], list[tuple[str, str, float, Optional[float]]]]:
    hikari = _ref(benches, "hikari")
    floor = _ref(benches, "floor")
    h = hikari["stats"][stat] if hikari else None
    f = floor["stats"][stat] if floor else None
    rows = sorted(benches, key=lambda b: b["stats"][stat])
    info0 = rows[0]["extra_info"]
    cols = [stat] + [x for x in ("mean", "median", "min") if x != stat]
    lines = [
        f"### {group}",
        "",
        f"Corpus: `{info0['mix']}`, {info0['payloads']} payloads, {info0['payload_bytes'] / 1e6:.2f} MB of JSON"
        + ("" if group.startswith("realistic full decode: zlib") else f", {info0['wire_bytes'] / 1e6:.2f} MB on the wire ({info0['transport']})")
        + f"; {rows[0]['stats']['rounds']} rounds each.",
        "",
        "| implementation | " + " | ".join(f"{x} ms" for x in cols) + f" | stddev ms | vs hikari ({stat}) | vs floor ({stat}) | MB/s |",
        "|---|" + "---:|" * (len(cols) + 4),
    ]
    chart = []
    for b in rows:
        s = b["stats"]
        info = b["extra_info"]
        v = s[stat]
        rh = v / h if h else None
        rf = v / f if f else None
        name = info["impl"]
        if info.get("family") == "ours":
            name = f"**{name}**"
        lines.append(
            f"| {name} | " + " | ".join(_ms(s[x]) for x in cols) + f" | {_ms(s['stddev'])} | "
            f"{'%.2fx' % rh if rh is not None else '-'} | {'%.2fx' % rf if rf is not None else '-'} | "
            f"{info['payload_bytes'] / 1e6 / v:.0f} |"
        )
        chart.append((info["impl"], info.get("family", ""), v, rh))
    ref_names = []
    if hikari:
        ref_names.append(f"hikari = {hikari['extra_info']['impl']}")
    if floor:
        ref_names.append(f"floor = {floor['extra_info']['impl']}")
    lines += ["", "References: " + "; ".join(ref_names) + ".", ""]
    return lines, chart


def _memory_table(group: str, benches: list) -> list[str]:
    info0 = benches[0]["extra_info"]
    lines = [
        f"### {group}",
        "",
        f"Corpus: `{info0['mix']}`, {info0['payloads']} payloads, {info0['payload_bytes'] / 1e6:.2f} MB of JSON, "
        f"largest payload {info0['largest_payload'] / 1e6:.2f} MB. One connection's decoder/context, every `d` read.",
        "",
        "| implementation | Python peak | Python retained | RSS peak | RSS retained | output buffer |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for b in benches:
        i = b["extra_info"]
        name = f"**{i['impl']}**" if i.get("family") == "ours" else i["impl"]
        buf = i.get("buffer_size")
        lines.append(
            f"| {name} | {_mib(i.get('py_peak'))} | {_mib(i.get('py_retained'))} | {_mib(i.get('rss_peak'))} | "
            f"{_mib(i.get('rss_retained'))} | {_mib(buf) if buf is not None else '-'} |"
        )
    lines.append("")
    return lines


def _versions(data: dict) -> list[str]:
    mi = data.get("machine_info", {})
    mij = mi.get("mijcodec", {})
    cpu = mi.get("cpu", {})
    lines = ["## Machine and versions", ""]
    lines.append(f"- machine: {cpu.get('brand_raw', mi.get('processor', '?'))}, {cpu.get('count', '?')} cores, "
                 f"{mi.get('system', '?')} {mi.get('release', '')}")
    lines.append(f"- python: {mi.get('python_implementation', '')} {mi.get('python_version', '?')}")
    if mij:
        for key in ("python -m mijcodec", "versions"):
            if key in mij:
                val = mij[key]
                if isinstance(val, dict):
                    lines.append("- " + ", ".join(f"{k} {v}" for k, v in val.items()))
                else:
                    lines.append(f"- `{key}`: " + "; ".join(x for x in str(val).splitlines() if x))
        if "load_start" in mij:
            lines.append(f"- load average (1/5/15 min) at the start of the run: {mij['load_start']}; at its end "
                         f"(this run's own load included): {mij.get('load_end', 'n/a')}")
        elif "load_before" in mij:
            lines.append(f"- load average (1/5/15 min) at the end of the run: {mij['load_before']}")
    lines.append(f"- run: {data.get('datetime', '?')}, pytest-benchmark {data.get('version', '?')}")
    lines.append("")
    return lines


def _targets(groups: "OrderedDict[str, list]", stat: str) -> list[str]:
    stats = [stat] + [x for x in ("median", "min") if x != stat]
    lines = [
        "## Issue 3 targets (ratio to hikari's path, same frames, same run)",
        "",
        "| case | target | " + " | ".join(f"by {x}" for x in stats) + " |",
        "|---|---:|" + "---:|" * len(stats),
    ]
    for group, impl, limit, label in TARGETS:
        benches = groups.get(group, [])
        hikari = _ref(benches, "hikari")
        ours = next((b for b in benches if b["extra_info"].get("impl") == impl), None)
        if not (hikari and ours):
            lines.append(f"| {label} | <= {limit:.2f}x | " + " | ".join("not measured" for _ in stats) + " |")
            continue
        cells = []
        for x in stats:
            r = ours["stats"][x] / hikari["stats"][x]
            cells.append(f"{r:.2f}x {'met' if r <= limit else '**not met**'}")
        lines.append(f"| {label} | <= {limit:.2f}x | " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def _chart(panels: list, path: str, stat: str) -> Optional[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install 'mijcodec[bench]'): results.png not written"
    panels = [(g, rows) for g, rows in panels if any(r[3] is not None for r in rows)]
    if not panels:
        return "no group has a hikari reference: results.png not written"
    ncols = 2
    nrows = (len(panels) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(15, 3.2 * nrows + 0.8), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax, (group, rows) in zip(axes.flat, panels):
        rows = [r for r in rows if r[3] is not None][::-1]
        names = [textwrap.fill(r[0], 42) for r in rows]
        ratios = [r[3] for r in rows]
        colors = [FAMILY_COLORS.get(r[1], "#999999") for r in rows]
        bars = ax.barh(range(len(rows)), ratios, color=colors)
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels(names, fontsize=7)
        ax.axvline(1.0, color="black", linewidth=0.8, linestyle="--")
        ax.set_title(group, fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
        for bar, ratio in zip(bars, ratios):
            ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {ratio:.2f}x", va="center", fontsize=6)
        ax.set_xlim(0, max(ratios) * 1.18)
    fig.suptitle(f"Decode time relative to hikari 2.7 + orjson on the same frames ({stat}; lower is faster)", fontsize=11)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in FAMILY_COLORS.values()]
    fig.legend(handles, ["mijcodec", "hikari", "discord.py", "stdlib", "floors"], loc="lower center", ncol=5, fontsize=8)
    fig.tight_layout(rect=(0, 0.03, 1, 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def _traffic() -> list[str]:
    """What the corpora are (deterministic: regenerated here from the same seed)."""
    sys.path.insert(0, HERE)
    try:
        import traffic
    except ImportError as exc:  # pragma: no cover
        return [f"(traffic.py not importable: {exc})", ""]
    lines = [
        "## Traffic",
        "",
        f"Generated by benches/traffic.py (seed {traffic.SEED:#x}); object shapes and Discord's key order follow "
        "the real captures credited there. One websocket message per payload.",
        "",
        "| mix | payloads | JSON | largest | zlib-stream | zstd-stream (open frame) | zstd closed frames | payload types |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for mix in traffic.MIXES:
        st = traffic.stats(mix)
        types = ", ".join(f"{t} {n}" for t, n in st["types"].items())
        lines.append(
            f"| {mix} | {st['payloads']} | {st['bytes'] / 1e6:.2f} MB | {st['largest'] / 1e3:.0f} kB | "
            f"{st['zlib_bytes'] / 1e6:.2f} MB | {st['zstd_bytes'] / 1e6:.2f} MB | {st['zstd_frames_bytes'] / 1e6:.2f} MB | {types} |"
        )
    lines.append("")
    return lines


README_START = "<!-- bench:start (written by benches/report.py) -->"
README_END = "<!-- bench:end -->"


def _update_readme(path: str, data: dict, groups: "OrderedDict[str, list]", panels: list, stat: str) -> str:
    """Rewrite the README's benchmark block from the same run, so its figures
    are always those of results.md and results.png."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        return f"README not updated: {exc}"
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        return f"README not updated: no {README_START!r} ... {README_END!r} block in {path}"
    block = [README_START, ""]
    block += [line.replace("## ", "#### ", 1) if line.startswith("## ") else line for line in _versions(data)]
    block += [line.replace("## ", "#### ", 1) if line.startswith("## ") else line for line in _targets(groups, stat)]
    block += ["#### Ratio to hikari 2.7 + orjson on the same frames", "",
              "| case | mijcodec compiled | mijcodec fallback | discord.py 2.7 + orjson | floor: decompress + orjson.loads |",
              "|---|---:|---:|---:|---:|"]
    for group, chart in panels:
        if " vs " in group:
            continue
        cells = {label: ratio for label, _family, _value, ratio in chart if ratio is not None}
        selective = "only" in group  # presence-heavy: mijcodec reads only MESSAGE_CREATE's d

        def pick(*labels: str) -> str:
            for label in labels:
                if label in cells:
                    return f"{cells[label]:.2f}x"
            for label, ratio in cells.items():
                if all(part in label for part in labels[-1].split("|")):
                    return f"{ratio:.2f}x"
            return "-"

        compiled = ("mijcodec (compiled) MESSAGE_CREATE only",) if selective else ("mijcodec (compiled)",)
        fallback = ("mijcodec (fallback) MESSAGE_CREATE only",) if selective else ("mijcodec (fallback)",)
        block.append(f"| {group} | {pick(*compiled)} | {pick(*fallback)} | "
                     f"{pick('discord.py|orjson')} | {pick('floor:|+ orjson')} |")
    block.append("")
    block.append("In the *only MESSAGE_CREATE read* rows mijcodec parses only MESSAGE_CREATE's `d` (what a bot "
                 "that ignores presences pays); the libraries parse every payload, as they must.")
    block.append("")
    block += [line.replace("## ", "#### ", 1) if line.startswith("## ") else line for line in _compat_summary(groups)]
    block += [f"Ratios of the {stat} of each case's rounds. All tables, memory included: "
              "[benches/results.md](benches/results.md); chart: [benches/results.png](benches/results.png).", "",
              README_END]
    text = text[:start] + "\n".join(block) + text[end + len(README_END):]
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return f"updated the benchmark block of {path}"


def report(json_path: str, out_dir: str, stat: str = "mean", png: bool = True, readme: Optional[str] = None) -> list[str]:
    data = _load(json_path)
    groups = _groups(data)
    lines = [
        "# mijcodec benchmark results",
        "",
        f"Generated by `python benches/report.py` from `{os.path.basename(json_path)}` "
        "(`pytest benches --benchmark-only --benchmark-json=...`). Times are per whole recorded "
        "connection, decoded from a fresh decoder/context; ratios compare implementations on the same "
        f"frames in the same run ({stat} of the rounds). The machine is noisy: trust the ratios, "
        "not the absolute times.",
        "",
    ]
    lines += _versions(data)
    lines += _targets(groups, stat)
    lines += _compat_summary(groups)
    lines += _traffic()
    lines += ["## Decode time", ""]
    panels = []
    memory = []
    compat = []
    for group, benches in groups.items():
        if _is_memory(benches):
            memory.append((group, benches))
            continue
        if _is_compat(benches):
            compat.append((group, benches))
            continue
        table, chart = _decode_table(group, benches, stat)
        lines += table
        panels.append((group, chart))
    if compat:
        lines += [
            "## Drop-in adapters: stock vs install()",
            "",
            "benches/test_compat.py: each library's own decode path (discord.py: its decompression context, "
            "`utils._from_json` and the steps of `received_message`; hikari: its transport's `receive_json`), "
            "stock and with `mijcodec.compat.<library>.install()` in effect (compression forced to the group's "
            "with `install(compress=...)`), each round from a fresh context/transport. Not in the chart, "
            "whose reference is hikari's stock path.",
            "",
        ]
        for group, benches in compat:
            lines += _compat_table(group, benches, stat)
    if memory:
        lines += [
            "## Memory per connection",
            "",
            "Measured by benches/memprobe.py in a fresh process per cell. *Python* columns are tracemalloc "
            "(Python-level allocations, zlib's state included; it cannot see memory C code gets from "
            "`malloc` directly: the compiled decoder's output buffer, libzstd's context and window). "
            "*RSS* columns are the whole process's resident memory (so they do include those), "
            "after `gc.collect()` + `malloc_trim(0)`, relative to before the decoder existed; coarse (pages, "
            "allocator arenas: a small negative value means the allocator gave back memory it held before the pass). *retained* is what is still held after the stream with the connection open "
            "(last packet dropped); *peak* includes the decoded objects of the largest payload. "
            "*output buffer* is the compiled decoder's `buffer_size`.",
            "",
        ]
        for group, benches in memory:
            lines += _memory_table(group, benches)
    md_path = os.path.join(out_dir, "results.md")
    with open(md_path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines).rstrip() + "\n")
    notes = [f"wrote {md_path}"]
    if readme:
        notes.append(_update_readme(readme, data, groups, panels, stat))
    if png:
        png_path = os.path.join(out_dir, "results.png")
        problem = _chart(panels, png_path, stat)
        notes.append(problem or f"wrote {png_path}")
    return notes


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("json", nargs="?", help="pytest-benchmark JSON (default with --run: benches/bench.json)")
    parser.add_argument("--run", action="store_true", help="run `pytest benches --benchmark-only` first")
    parser.add_argument("--stat", choices=("mean", "median", "min"), default="mean")
    parser.add_argument("--out-dir", default=HERE)
    parser.add_argument("--no-png", action="store_true")
    parser.add_argument("--no-readme", action="store_true", help="leave README.md's benchmark block alone")
    args = parser.parse_args(argv)
    json_path = args.json or os.path.join(HERE, "bench.json")
    if args.run:
        cmd = [sys.executable, "-m", "pytest", os.path.relpath(HERE, ROOT), "--benchmark-only", f"--benchmark-json={os.path.abspath(json_path)}", "-q"]
        print("+", " ".join(cmd), flush=True)
        rc = subprocess.call(cmd, cwd=ROOT)
        if rc != 0:
            return rc
    elif not args.json:
        parser.error("give the benchmark JSON, or --run")
    readme = None if args.no_readme else os.path.join(ROOT, "README.md")
    for note in report(json_path, args.out_dir, args.stat, png=not args.no_png, readme=readme):
        print(note)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
