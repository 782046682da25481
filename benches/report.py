"""Turn a pytest-benchmark JSON into benches/results.md, benches/results.png
and the benchmark block of README.md.

    python benches/report.py bench.json           # from an existing run
    python benches/report.py --run                # run the suite, then report
                                                  # (writes benches/bench.json)
    python benches/report.py --run --case-timer=time.perf_counter
                                                  # other options go to pytest

Options: ``--stat median|min`` (what the ratios use; default median),
``--out-dir DIR`` (default: this folder), ``--no-png``, ``--no-readme``.

Figures are the **median of the rounds** of each case (or, with
``--stat min``, the minimum), always shown with their spread: the
interquartile range (q1-q3) of the rounds, the min and the max. The decode
groups (test_decode.py) and the drop-in groups (test_compat.py) run their
cases in interleaved rounds, so a ratio there is the **median of the
per-round ratios** (case / reference in the same round) with their
interquartile range (never a ratio of means). Groups whose cases ran one
after the other (none of ours today) get the median of one case over the
median of its reference, with the range the quartiles allow:
``q1(case) / q3(ref)`` to ``q3(case) / q1(ref)``. A narrow range means a
quiet run. The references of a decode group are hikari's decode logic (role
"hikari", orjson) and the fastest floor of the group (role "floor": the
lowest median among "inflater + orjson.loads back to back"). Memory groups
get a table of the bytes memprobe.py measured.

The chart shows the ratios to hikari with their ranges, one panel per group.
Works without a display (matplotlib's Agg backend); without matplotlib it
writes only the Markdown and says so.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap
from collections import OrderedDict
from typing import Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# issue 13's targets: (label, group, case selector, reference, at most)
#   case selector: (impl label, exact) ; reference: "hikari" | "floor"
TARGETS = [
    ("compiled, every d read, zlib-stream / hikari", "zlib realistic full decode", "mijcodec (compiled)", "hikari", 0.82),
    ("compiled, every d read, zstd-stream / hikari", "zstd realistic full decode", "mijcodec (compiled)", "hikari", 1.00),
    ("compiled, every d read, zlib-stream / floor", "zlib realistic full decode", "mijcodec (compiled)", "floor", 1.03),
    ("compiled, every d read, zstd-stream / floor", "zstd realistic full decode", "mijcodec (compiled)", "floor", 1.03),
    ("compiled, presence-heavy, only MESSAGE_CREATE's d, zlib / hikari", "zlib presence-heavy, only MESSAGE_CREATE read",
     "mijcodec (compiled) MESSAGE_CREATE only", "hikari", 0.40),
    ("compiled, presence-heavy, only MESSAGE_CREATE's d, zstd / hikari", "zstd presence-heavy, only MESSAGE_CREATE read",
     "mijcodec (compiled) MESSAGE_CREATE only", "hikari", 0.45),
    ("fallback, every d read, zlib-stream / hikari", "zlib realistic full decode", "mijcodec (fallback)", "hikari", 1.05),
    ("fallback, every d read, zstd-stream / hikari", "zstd realistic full decode", "mijcodec (fallback)", "hikari", 1.00),
    ("fallback, ack storm, zlib-stream / hikari", "zlib ack storm", "mijcodec (fallback)", "hikari", 1.00),
    ("fallback, ack storm, zstd-stream / hikari", "zstd ack storm", "mijcodec (fallback)", "hikari", 1.00),
]
# every drop-in: install() / stock at most 1.0, on zlib-stream at most 0.90
COMPAT_LIMIT = {"zlib": 0.90}
FAMILY_COLORS = {"ours": "#2b7bba", "hikari": "#e07b39", "discord.py": "#7d5ba6", "floor": "#4daf4a"}


def _load(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _quartiles(xs: list[float]) -> tuple[float, float, float]:
    if len(xs) == 1:
        return xs[0], xs[0], xs[0]
    q1, q2, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    return q1, q2, q3


def _case_bench(entry: dict, case: dict) -> dict:
    """One case of an interleaved group (test_decode.py) in the shape of a
    pytest-benchmark entry, plus its round times for paired ratios."""
    times = case["times"]
    q1, med, q3 = _quartiles(times)
    info = {k: v for k, v in entry["extra_info"].items() if k not in ("cases", "unavailable")}
    info.update({k: v for k, v in case.items() if k != "times"})
    return {
        "group": info["title"],
        "name": f"{entry['name']}[{case['id']}]",
        "extra_info": info,
        "stats": {"median": med, "q1": q1, "q3": q3, "min": min(times), "max": max(times), "rounds": len(times)},
        "times": times,
        "interleaved_in": entry["fullname"],
    }


def _groups(data: dict) -> "OrderedDict[str, list]":
    groups: OrderedDict[str, list] = OrderedDict()
    for b in data["benchmarks"]:
        if b["extra_info"].get("interleaved"):
            for case in b["extra_info"]["cases"]:
                cb = _case_bench(b, case)
                groups.setdefault(cb["group"], []).append(cb)
        else:
            groups.setdefault(b.get("group") or b["name"], []).append(b)
    return groups


def _unavailable(data: dict) -> list[str]:
    out = []
    for b in data["benchmarks"]:
        for key, why in (b["extra_info"].get("unavailable") or {}).items():
            out.append(f"- {b['extra_info'].get('title', b['name'])}: `{key}` did not run: {why}")
    return out


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f}"


def _mib(n: Optional[float]) -> str:
    if n is None:
        return "n/a"
    if abs(n) < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / (1024 * 1024):.2f} MiB"


# -- statistics -----------------------------------------------------------------


def _v(b: dict, stat: str) -> float:
    return b["stats"][stat]


def _lo_hi(b: dict, stat: str) -> tuple[float, float]:
    """The spread that goes with ``stat``: the quartiles for the median, the
    min and the first quartile for the min (how far the best rounds are from
    the typical good one)."""
    s = b["stats"]
    return (s["q1"], s["q3"]) if stat == "median" else (s["min"], s["q1"])


def ratio(b: dict, ref: dict, stat: str) -> tuple[float, float, float]:
    """``b`` relative to ``ref``: (figure, low, high).

    Cases of one interleaved group ran round by round side by side, so the
    ratio is taken per round: the figure is the median of the per-round
    ratios (with ``--stat min``: the ratio of the minima) and the range is
    their interquartile range. Otherwise (cases that ran one after the
    other, e.g. from an older JSON) the figure is ``stat(b) / stat(ref)`` and the
    range the one the spreads allow (see :func:`_lo_hi`)."""
    if b is ref:
        return 1.0, 1.0, 1.0
    ta, tr = b.get("times"), ref.get("times")
    if ta and tr and len(ta) == len(tr) and b.get("interleaved_in") == ref.get("interleaved_in"):
        q1, med, q3 = _quartiles([x / y for x, y in zip(ta, tr)])
        fig = med if stat == "median" else min(ta) / min(tr)
        return fig, q1, q3
    lo, hi = _lo_hi(b, stat)
    rlo, rhi = _lo_hi(ref, stat)
    return _v(b, stat) / _v(ref, stat), lo / rhi, hi / rlo


def _fmt_ratio(r: Optional[tuple[float, float, float]]) -> str:
    if r is None:
        return "-"
    return f"{r[0]:.2f}x ({r[1]:.2f}-{r[2]:.2f})"


def _spread(b: dict, stat: str) -> str:
    lo, hi = _lo_hi(b, stat)
    return f"{_ms(lo)}-{_ms(hi)}"


# -- references ---------------------------------------------------------------


def _ref(benches: list, role: str, stat: str = "median") -> Optional[dict]:
    """The case of ``role``; for "floor", the fastest of them."""
    found = [b for b in benches if b["extra_info"].get("role") == role]
    if not found:
        return None
    return min(found, key=lambda b: _v(b, stat))


def _is_compat(benches: list) -> bool:
    """A drop-in group of test_compat.py: one library stock vs install()."""
    return any(b["extra_info"].get("compat") for b in benches)


def _is_bridge(benches: list) -> bool:
    """benches/test_bridge.py: one firehose connection through a whole client (bridge, hikari, run)."""
    return all("client" in b["extra_info"] for b in benches)


def _bridge_table(group: str, benches: list, stat: str) -> list[str]:
    """Events per second per client, from the round statistic (not the mean)."""
    n = benches[0]["extra_info"]["dispatches"]
    ref = next((b for b in benches if b["extra_info"]["client"] == "hikari"), None)
    lines = [f"### {group}", "",
             f"| client | {stat} ms | min ms | max ms | events/s ({stat}) | vs hikari ({stat}) |",
             "|---|---:|---:|---:|---:|---:|"]
    for b in sorted(benches, key=lambda b: _v(b, stat)):
        v = _v(b, stat)
        rel = f"{_v(ref, stat) / v:.2f}x" if ref is not None else "-"
        lines.append(f"| {b['extra_info']['client']} | {_ms(v)} | {_ms(b['stats']['min'])} | "
                     f"{_ms(b['stats']['max'])} | {n / v:,.0f} | {rel} |")
    lines += ["", "vs hikari: hikari's time / this client's time (> 1 means more events per second).", ""]
    return lines


def _is_memory(benches: list) -> bool:
    return all(b["extra_info"].get("role") == "memory" for b in benches)


def _find(benches: list, impl: str) -> Optional[dict]:
    return next((b for b in benches if b["extra_info"].get("impl") == impl), None)


# -- tables -------------------------------------------------------------------


def _corpus_line(benches: list, with_wire: bool = True) -> str:
    info = benches[0]["extra_info"]
    rounds = sorted({b["stats"]["rounds"] for b in benches})
    line = f"Corpus: `{info['mix']}`, {info['payloads']} payloads, {info['payload_bytes'] / 1e6:.2f} MB of JSON"
    if with_wire and "wire_bytes" in info:
        line += f", {info['wire_bytes'] / 1e6:.2f} MB on the wire ({info['transport']})"
    return line + f"; {'/'.join(map(str, rounds))} rounds each."


def _decode_table(group: str, benches: list, stat: str) -> tuple[list[str], list[tuple]]:
    hikari = _ref(benches, "hikari", stat)
    floor = _ref(benches, "floor", stat)
    rows = sorted(benches, key=lambda b: _v(b, stat))
    spread = "q1-q3 ms" if stat == "median" else "min-q1 ms"
    lines = [
        f"### {group}",
        "",
        _corpus_line(benches),
        "",
        f"| case | {stat} ms | {spread} | min ms | max ms | vs hikari ({stat}, range) | vs floor ({stat}, range) | us/payload | MB/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    chart = []
    for b in rows:
        s = b["stats"]
        info = b["extra_info"]
        v = _v(b, stat)
        rh = ratio(b, hikari, stat) if hikari else None
        rf = ratio(b, floor, stat) if floor else None
        name = info["impl"]
        if info.get("inflater") and info.get("family") in ("ours", "hikari", "discord.py") and info["inflater"] not in name:
            name += f" [{info['inflater']}]"
        if info.get("family") == "ours":
            name = f"**{name}**"
        lines.append(
            f"| {name} | {_ms(v)} | {_spread(b, stat)} | {_ms(s['min'])} | {_ms(s['max'])} | "
            f"{_fmt_ratio(rh)} | {_fmt_ratio(rf)} | {v / info['payloads'] * 1e6:.2f} | {info['payload_bytes'] / 1e6 / v:.0f} |"
        )
        chart.append((info["impl"], info.get("family", ""), v, rh, rf))
    refs = []
    if hikari:
        refs.append(f"hikari = {hikari['extra_info']['impl']}")
    if floor:
        refs.append(f"floor = {floor['extra_info']['impl']} (the fastest floor of the group)")
    lines += ["", "References: " + "; ".join(refs) + "." if refs else "No reference in this group.", ""]
    return lines, chart


def _compat_rows(benches: list) -> tuple[Optional[dict], list[dict]]:
    stock = _ref(benches, "stock")
    installed = [b for b in benches if b["extra_info"].get("role") == "installed"]
    return stock, installed


def _compat_table(group: str, benches: list, stat: str) -> list[str]:
    stock, _ = _compat_rows(benches)
    rows = sorted(benches, key=lambda b: _v(b, stat))
    spread = "q1-q3 ms" if stat == "median" else "min-q1 ms"
    lines = [
        f"### {group}",
        "",
        _corpus_line(benches),
        "",
        f"| case | {stat} ms | {spread} | min ms | max ms | installed / stock ({stat}, range) | MB/s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for b in rows:
        s = b["stats"]
        info = b["extra_info"]
        v = _v(b, stat)
        name = f"**{info['impl']}**" if info.get("role") == "installed" else info["impl"]
        r = _fmt_ratio(ratio(b, stock, stat)) if stock and info.get("role") == "installed" else ("1.00x" if b is stock else "-")
        lines.append(f"| {name} | {_ms(v)} | {_spread(b, stat)} | {_ms(s['min'])} | {_ms(s['max'])} | {r} | "
                     f"{info['payload_bytes'] / 1e6 / v:.0f} |")
    lines += ["", f"Reference: stock = {stock['extra_info']['impl']}." if stock else "No stock reference in this group.", ""]
    return lines


def _compat_targets(groups: "OrderedDict[str, list]", stat: str) -> list[str]:
    rows = []
    for benches in groups.values():
        if not _is_compat(benches):
            continue
        stock, installed = _compat_rows(benches)
        for b in sorted(installed, key=lambda b: b["extra_info"]["impl"]):
            info = b["extra_info"]
            limit = COMPAT_LIMIT.get(info.get("kind", ""), 1.0)
            impl = info["impl"].split(": ", 1)[-1]
            label = f"drop-in {info['compat']}, {info['transport']}, {impl}: install() / stock"
            if stock is None:
                rows.append(f"| {label} | <= {limit:.2f}x | no stock run | - | - |")
                continue
            r = ratio(b, stock, stat)
            rmin = ratio(b, stock, "min")[0]
            rows.append(f"| {label} | <= {limit:.2f}x | {_fmt_ratio(r)} | {rmin:.2f}x | {'met' if r[0] <= limit else '**not met**'} |")
    return rows


def _targets(groups: "OrderedDict[str, list]", stat: str) -> list[str]:
    lines = [
        "## Issue 13 targets (same frames, same run)",
        "",
        ("Decode and drop-in groups: median of the per-round ratios of interleaved rounds (interquartile range). "
         if stat == "median" else "Decode and drop-in groups: ratio of the minima (interquartile range of the per-round ratios). ")
        + "Then the ratio of the minima; *met* is judged on the first figure.",
        "",
        f"| case | target | ratio ({stat}, range) | ratio of minima | |",
        "|---|---:|---:|---:|---|",
    ]
    for label, group, impl, ref_role, limit in TARGETS:
        benches = groups.get(group, [])
        ref = _ref(benches, ref_role, stat)
        ours = _find(benches, impl)
        if not (ref and ours):
            lines.append(f"| {label} | <= {limit:.2f}x | not measured | - | |")
            continue
        r = ratio(ours, ref, stat)
        rmin = _v(ours, "min") / _v(_ref(benches, ref_role, "min"), "min")
        lines.append(f"| {label} | <= {limit:.2f}x | {_fmt_ratio(r)} | {rmin:.2f}x | {'met' if r[0] <= limit else '**not met**'} |")
    lines += _compat_targets(groups, stat)
    lines.append("")
    return lines


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
    timers = sorted({b["extra_info"]["timer"] for b in data.get("benchmarks", []) if b["extra_info"].get("timer")})
    lines.append(f"- run: {data.get('datetime', '?')}, pytest-benchmark {data.get('version', '?')}"
                 + (f"; decode and drop-in groups timed with `{'`, `'.join(timers)}`" if timers else ""))
    lines.append("")
    return lines


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


# -- chart --------------------------------------------------------------------


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
    fig, axes = plt.subplots(nrows, ncols, figsize=(15, 3.0 * nrows + 0.8), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax, (group, rows) in zip(axes.flat, panels):
        rows = sorted((r for r in rows if r[3] is not None), key=lambda r: -r[3][0])
        names = [textwrap.fill(r[0], 46) for r in rows]
        ratios = [r[3][0] for r in rows]
        err = [[r[3][0] - r[3][1] for r in rows], [r[3][2] - r[3][0] for r in rows]]
        colors = [FAMILY_COLORS.get(r[1], "#999999") for r in rows]
        bars = ax.barh(range(len(rows)), ratios, color=colors, xerr=err, error_kw={"elinewidth": 0.8, "capsize": 2})
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels(names, fontsize=7)
        ax.axvline(1.0, color="black", linewidth=0.8, linestyle="--")
        ax.set_title(group, fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
        for bar, r in zip(bars, rows):
            ax.text(r[3][2], bar.get_y() + bar.get_height() / 2, f" {r[3][0]:.2f}x", va="center", fontsize=6)
        ax.set_xlim(0, max(r[3][2] for r in rows) * 1.2)
    fig.suptitle(f"Decode time relative to hikari 2.7's decode logic + orjson on the same frames "
                 f"(ratio of {stat}s, bars: range from the spreads; lower is faster)", fontsize=10)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in FAMILY_COLORS.values()]
    fig.legend(handles, ["mijcodec", "hikari", "discord.py", "floors"], loc="lower center", ncol=4, fontsize=8)
    fig.tight_layout(rect=(0, 0.03, 1, 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


# -- README -------------------------------------------------------------------

README_START = "<!-- bench:start (written by benches/report.py) -->"
README_END = "<!-- bench:end -->"


def _h4(lines: list[str]) -> list[str]:
    return [line.replace("## ", "#### ", 1) if line.startswith("## ") else line for line in lines]


def readme_block(data: dict, groups: "OrderedDict[str, list]", panels: list, stat: str) -> list[str]:
    """The README's benchmark block: machine, targets, one row per group."""
    block = [README_START, ""]
    block += _h4(_versions(data))
    block += _h4(_targets(groups, stat))
    block += [f"#### Each group: ratio ({stat}) to hikari 2.7's decode logic and to the floor (range from the spreads)", "",
              "| group | mijcodec compiled / hikari | mijcodec fallback / hikari | mijcodec compiled / floor | "
              "discord.py 2.7 + orjson / hikari | floor |",
              "|---|---:|---:|---:|---:|---|"]
    for group, chart in panels:
        by = {label: (rh, rf) for label, _family, _v, rh, rf in chart}
        sel = "only" in group  # presence-heavy: mijcodec reads only MESSAGE_CREATE's d
        c = by.get("mijcodec (compiled) MESSAGE_CREATE only" if sel else "mijcodec (compiled)")
        f = by.get("mijcodec (fallback) MESSAGE_CREATE only" if sel else "mijcodec (fallback)")
        dpy = next((v for k, v in by.items() if k.startswith("discord.py") and "orjson" in k), None)
        floor = _ref(groups[group], "floor", stat)
        block.append(f"| {group} | {_fmt_ratio(c[0]) if c else '-'} | {_fmt_ratio(f[0]) if f else '-'} | "
                     f"{_fmt_ratio(c[1]) if c else '-'} | {_fmt_ratio(dpy[0]) if dpy else '-'} | "
                     f"{floor['extra_info']['impl'].removeprefix('floor: ') if floor else '-'} |")
    block += ["",
              "Every case is a bare loop over the same recorded messages in one process (benches/README.md says what "
              "each includes). In the *only MESSAGE_CREATE read* rows mijcodec parses only MESSAGE_CREATE's `d`; "
              "the libraries parse every payload, as they must.",
              "",
              f"All tables, per-inflater cases and memory: [benches/results.md](benches/results.md); "
              "chart: [benches/results.png](benches/results.png).", "", README_END]
    return block


def _update_readme(path: str, block: list[str]) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        return f"README not updated: {exc}"
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        return f"README not updated: no {README_START!r} ... {README_END!r} block in {path}"
    text = text[:start] + "\n".join(block) + text[end + len(README_END):]
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return f"updated the benchmark block of {path}"


# -- main ---------------------------------------------------------------------


def report(json_path: str, out_dir: str, stat: str = "median", png: bool = True, readme: Optional[str] = None) -> list[str]:
    data = _load(json_path)
    groups = _groups(data)
    lines = [
        "# mijcodec benchmark results",
        "",
        f"Generated by `python benches/report.py` from `{os.path.basename(json_path)}` "
        "(`pytest benches --benchmark-only --benchmark-json=...`). Times are per whole recorded "
        f"connection, decoded from a fresh decoder/context: the {stat} of the rounds with its spread "
        f"({'q1-q3' if stat == 'median' else 'min-q1'}), min and max. Ratios are of {stat}s of cases of the "
        "same run, with the range the spreads allow; benches/README.md says what each case includes.",
        "",
    ]
    lines += _versions(data)
    lines += _targets(groups, stat)
    missing = _unavailable(data)
    if missing:
        lines += ["Cases that could not run here:", "", *missing, ""]
    lines += _traffic()
    lines += ["## Decode time", ""]
    panels = []
    memory = []
    compat = []
    bridge = []
    for group, benches in groups.items():
        if _is_bridge(benches):
            bridge.append((group, benches))
        elif _is_memory(benches):
            memory.append((group, benches))
        elif _is_compat(benches):
            compat.append((group, benches))
        else:
            table, chart = _decode_table(group, benches, stat)
            lines += table
            panels.append((group, chart))
    if compat:
        lines += [
            "## Drop-in adapters: stock vs install()",
            "",
            "benches/test_compat.py: each library's own decode path, stock and with "
            "`mijcodec.compat.<library>.install()` in effect, each round from a fresh context/transport "
            "(benches/README.md). Not in the chart, whose reference is hikari's decode logic.",
            "",
        ]
        for group, benches in compat:
            lines += _compat_table(group, benches, stat)
    if bridge:
        lines += ["## Redis bridge: events per second from one firehose connection", "",
                  "benches/test_bridge.py: the same traffic through `python -m gateway bridge` to a real "
                  "redis-server, through hikari's shard with a no-op consumer, and through "
                  "`python -m gateway run` (benches/README.md).", ""]
        for group, benches in bridge:
            lines += _bridge_table(group, benches, stat)
    if memory:
        lines += [
            "## Memory per connection",
            "",
            "Measured by benches/memprobe.py in a fresh process per cell. *Python* columns are tracemalloc "
            "(Python-level allocations, zlib's state included; it cannot see memory C code gets from "
            "`malloc` directly: the compiled decoder's output buffer, libzstd's context and window). "
            "*RSS* columns are the whole process's resident memory (so they do include those), "
            "after `gc.collect()` + `malloc_trim(0)`, relative to before the decoder existed; coarse (pages, "
            "allocator arenas: a small negative value means the allocator gave back memory it held before the pass). "
            "*retained* is what is still held after the stream with the connection open "
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
        notes.append(_update_readme(readme, readme_block(data, groups, panels, stat)))
    if png:
        png_path = os.path.join(out_dir, "results.png")
        problem = _chart(panels, png_path, stat)
        notes.append(problem or f"wrote {png_path}")
    return notes


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("json", nargs="?", help="pytest-benchmark JSON (default with --run: benches/bench.json)")
    parser.add_argument("--run", action="store_true", help="run `pytest benches --benchmark-only` first")
    parser.add_argument("--stat", choices=("median", "min"), default="median")
    parser.add_argument("--out-dir", default=HERE)
    parser.add_argument("--no-png", action="store_true")
    parser.add_argument("--no-readme", action="store_true", help="leave README.md's benchmark block alone")
    args, extra = parser.parse_known_args(argv)
    if extra and not args.run:
        parser.error(f"unrecognized arguments: {' '.join(extra)} (extra pytest options go with --run)")
    json_path = args.json or os.path.join(HERE, "bench.json")
    if args.run:
        cmd = [sys.executable, "-m", "pytest", os.path.relpath(HERE, ROOT), "--benchmark-only",
               f"--benchmark-json={os.path.abspath(json_path)}", "-q", "-p", "no:cacheprovider", *extra]
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
