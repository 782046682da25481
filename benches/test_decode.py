"""Decode-speed benchmarks: mijcodec (compiled and fallback) against the decode
logic of the libraries bots run today (discord.py 2.7, hikari 2.7) and
against the floors, on the same recorded frames, in one run.

Like with like: every case is a bare ``for`` loop over the recorded
websocket messages (bytes) in this process: mijcodec's is ``Decoder.feed``
plus reading the packet's ``op``, ``t``, ``s`` and ``d``; a library's is its
own decompression + JSON code and its gateway loop's envelope reads
(baselines.py says which lines); a floor is an inflater + ``orjson.loads``
back to back. No case runs a coroutine or an aiohttp message object (the
libraries' transports are measured against themselves with the drop-in
installed, in test_compat.py).

Every case decodes a whole recorded connection from a fresh decoder/context
(the contexts are stateful: a zlib-stream or zstd-stream can only be decoded
from its start), made before the timed span, after which ``gc.collect()``
runs so every case starts from the same collector state; the collector stays
on while timing, as in a real bot.

One test per group (``test_decode[<group>]``) runs the group's cases in
interleaved rounds: each round runs every case once, in an order rotated by
one each round. A change of the machine's load therefore hits every case of
the group alike, and the ratio of two cases can be taken round by round.
The per-case times go into the benchmark JSON's ``extra_info``;
benches/report.py turns them into medians with their spread and ratios
against hikari's logic and against the fastest floor.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest

import baselines as B
import traffic
from conftest import implementation

COMPRESS = {"zlib": "zlib-stream", "zstd": "zstd-stream", "zstd-frames": "zstd-stream"}
KIND_LABEL = {"zlib": "zlib-stream", "zstd": "zstd-stream (open frame)", "zstd-frames": "zstd-stream (closed frames)"}

# mijcodec's cases: (implementation, selective, other inflater). The plain
# cases use the install's default inflater (``ZLIB_INFLATER``: zlib-ng when
# both implementations can use it); the "-other-zlib" cases the other one the
# implementation has (system zlib when the default is zlib-ng, and the
# reverse), so each inflater's share is visible in the same group.
OURS = {
    "compiled": ("compiled", False, False),
    "fallback": ("fallback", False, False),
    "compiled-selective": ("compiled", True, False),
    "fallback-selective": ("fallback", True, False),
    "compiled-other-zlib": ("compiled", False, True),
    "fallback-other-zlib": ("fallback", False, True),
}
IMPL_LABEL = {"compiled": "mijcodec (compiled)", "fallback": "mijcodec (fallback)"}


@dataclass(frozen=True)
class Group:
    id: str
    title: str  # the benchmark group (report.py's tables and targets use it)
    mix: str
    kind: str
    rounds: int
    cases: tuple  # keys of OURS and baseline ids, in the order they run


_ZLIB_FLOORS = ("floor-zlibng-orjson", "floor-zlib-orjson")
_ZLIB_DETAIL = ("floor-zlibng", "floor-zlib", "floor-orjson-zlib")
_ZSTD_DETAIL = ("floor-zstd", "floor-orjson-zstd")

# Rounds are fixed (one case is 3-110 ms depending on case and implementation,
# a round runs every case of its group once) so that this file's part of
# `pytest benches --benchmark-only` stays under about 2 minutes on 2 cores.
GROUPS = [
    Group("zlib-realistic", "zlib realistic full decode", "realistic", "zlib", 15,
          ("compiled", "hikari-zlib", *_ZLIB_FLOORS, "fallback", "compiled-other-zlib", "fallback-other-zlib",
           "dpy-zlib-orjson", "dpy-zlib-json", *_ZLIB_DETAIL)),
    Group("zstd-realistic", "zstd realistic full decode", "realistic", "zstd", 15,
          ("compiled", "hikari-zstd", "floor-zstd-orjson", "fallback", "dpy-zstd-orjson", *_ZSTD_DETAIL)),
    Group("zlib-presence", "zlib presence-heavy, only MESSAGE_CREATE read", "presence-heavy", "zlib", 15,
          ("compiled-selective", "hikari-zlib", *_ZLIB_FLOORS, "fallback-selective", "compiled", "fallback")),
    Group("zstd-presence", "zstd presence-heavy, only MESSAGE_CREATE read", "presence-heavy", "zstd", 15,
          ("compiled-selective", "hikari-zstd", "floor-zstd-orjson", "fallback-selective", "compiled", "fallback")),
    Group("zlib-huge", "zlib huge GUILD_CREATE", "huge", "zlib", 11,
          ("compiled", "hikari-zlib", *_ZLIB_FLOORS, "fallback", "compiled-other-zlib", "fallback-other-zlib")),
    Group("zstd-huge", "zstd huge GUILD_CREATE", "huge", "zstd", 11,
          ("compiled", "hikari-zstd", "floor-zstd-orjson", "fallback")),
    Group("zlib-acks", "zlib ack storm", "ack-storm", "zlib", 15,
          ("compiled", "hikari-zlib", *_ZLIB_FLOORS, "fallback", "compiled-other-zlib", "fallback-other-zlib")),
    Group("zstd-acks", "zstd ack storm", "ack-storm", "zstd", 15,
          ("compiled", "hikari-zstd", "floor-zstd-orjson", "fallback")),
    # Spacebar's closed frames: hikari and discord.py stop after the first
    # frame (test_closed_frames_break_the_libraries), so only mijcodec and the
    # one-shot floor.
    Group("zstd-frames-realistic", "zstd closed frames realistic full decode", "realistic", "zstd-frames", 11,
          ("compiled", "floor-zstd-frames-orjson", "fallback")),
]
BY_ID = {g.id: g for g in GROUPS}


def _check(result: tuple, mix: str, *, seq: bool = True) -> None:
    n, last = result
    assert n == len(traffic.payloads(mix)), f"decoded {n} payloads of {len(traffic.payloads(mix))}"
    if seq:
        assert last == traffic.expected_last_seq(mix)


# -- ours ---------------------------------------------------------------------


def ours_full(dec: Any, messages: list) -> tuple:
    """Every packet's envelope and ``d``, like the baselines read them."""
    feed = dec.feed
    n = 0
    for m in messages:
        pkt = feed(m)
        if pkt is None:
            continue
        n += 1
        pkt.op, pkt.t, pkt.s, pkt.d
    return n, dec.seq


def ours_selective(dec: Any, messages: list) -> tuple:
    """Feed everything; a MESSAGE_CREATE handler (registered when the decoder
    was made) reads ``d``; nothing else is parsed."""
    feed = dec.feed
    n = 0
    for m in messages:
        if feed(m) is not None:
            n += 1
    return n, dec.seq


def _new_ours(codec: Any, kind: str, *, selective: bool, calls: list, inflater: Any = None) -> Callable[[], Any]:
    """Decoder factory; with ``selective``, a MESSAGE_CREATE handler reads
    ``d`` and counts its calls in ``calls[0]``."""
    compress = COMPRESS[kind]
    kw = {"inflater": inflater} if inflater else {}

    def new() -> Any:
        dec = codec.Decoder(compress, **kw)
        if selective:
            def on_message_create(pkt: Any) -> None:
                pkt.d["content"]
                calls[0] += 1

            dec.on("MESSAGE_CREATE", on_message_create)
        return dec

    return new


def _inflater_name(codec: Any, name: Any) -> str:
    """"zlib-ng 2.3.3" / "system zlib 1.2.13": what ``name`` is in ``codec``."""
    versions = getattr(codec, "INFLATERS", None) or {"zlib": codec.ZLIB_VERSION}
    name = name or "zlib"
    return f"{'system zlib' if name == 'zlib' else name} {versions[name]}"


# -- baselines ------------------------------------------------------------------


def get_baseline(bid: str) -> B.Baseline:
    """The baseline, or a skip saying what to install when it cannot run here."""
    try:
        return B.baseline(bid)
    except B.BaselineUnavailable as exc:
        pytest.skip(str(exc))


# -- the interleaved rounds -------------------------------------------------------


@dataclass
class Case:
    """One case of a group: its label and role for the report, a factory of
    its fresh per-connection state, the loop it runs, its input, and the
    round times measured so far."""

    key: str
    info: dict
    new: Callable[[], Any]
    run: Callable[[Any, list], tuple]
    data: list
    check: Callable[[tuple], None]
    times: list = field(default_factory=list)


def _ours_case(config: pytest.Config, g: Group, key: str) -> Case:
    impl, selective, other = OURS[key]
    codec = implementation(config, impl)
    label = IMPL_LABEL[impl]
    role = "ours"
    inflater = getattr(codec, "ZLIB_INFLATER", None)
    if other:
        others = [name for name in getattr(codec, "INFLATERS", {}) if name != inflater]
        if not others:
            raise B.BaselineUnavailable(f"{codec.__name__} has one inflater here ({inflater}): no other to compare")
        inflater = others[0]
        label += f" with {_inflater_name(codec, inflater)}"
        role = "ours-other-zlib"
    if selective:
        label += " MESSAGE_CREATE only"
    elif not other and any(OURS[c][1] for c in g.cases if c in OURS):  # beside a selective case
        label += " full decode"
        role = "ours-full"
    calls = [0]
    per_round = traffic.stats(g.mix)["types"].get("MESSAGE_CREATE", 0)

    def check(result: tuple) -> None:
        _check(result, g.mix)
        if selective:
            assert calls[0] > 0 and calls[0] % per_round == 0, (calls[0], per_round)

    info = dict(impl=label, family="ours", role=role, selective=selective, implementation=impl,
                inflater=_inflater_name(codec, inflater) if g.kind == "zlib" else "")
    return Case(key, info, _new_ours(codec, g.kind, selective=selective, calls=calls, inflater=inflater if other else None),
                ours_selective if selective else ours_full, traffic.messages(g.mix, g.kind), check)


def _baseline_case(g: Group, bid: str) -> Case:
    b = B.baseline(bid)
    assert b.kind == g.kind, (bid, g.id)
    data = traffic.payloads(g.mix) if b.input == "payloads" else traffic.messages(g.mix, g.kind)
    info = dict(impl=b.label, family=b.family, role=b.role, selective=False, inflater=b.inflater)
    return Case(bid, info, lambda: b.new(data), b.run, data, lambda result: _check(result, g.mix, seq=b.checks_seq))


def _cases(config: pytest.Config, g: Group) -> tuple[list[Case], dict[str, str]]:
    cases, missing = [], {}
    for key in g.cases:
        try:
            cases.append(_ours_case(config, g, key) if key in OURS else _baseline_case(g, key))
        except B.BaselineUnavailable as exc:
            missing[key] = str(exc)
        except pytest.skip.Exception as exc:  # the compiled case under --no-c-extensions
            missing[key] = str(exc)
    return cases, missing


def _time_once(case: Case, timer: Callable[[], float]) -> float:
    state = case.new()
    gc.collect()
    t0 = timer()
    result = case.run(state, case.data)
    elapsed = timer() - t0
    case.check(result)
    return elapsed


@pytest.mark.parametrize("group", [g.id for g in GROUPS])
def test_decode(benchmark: Any, request: pytest.FixtureRequest, group: str) -> None:
    """Every case of the group, round after round: each round runs each case
    once on a whole recorded connection, from a fresh decoder/context, in an
    order rotated by one every round (so every case runs in every position
    equally often). A case's time is its own ``--case-timer`` span around
    the decode loop (the state's creation and ``gc.collect()`` before it are
    not timed); they go into the JSON's ``extra_info["cases"]``, which is
    what report.py reads. The round time pytest-benchmark itself reports for
    this test is that of all the cases together plus setup: ignore it."""
    g = BY_ID[group]
    cases, missing = _cases(request.config, g)
    assert cases, f"no case of {g.id} can run here: {missing}"
    timer, timer_name = B.case_timer(request.config)
    benchmark.group = f"{g.title} (interleaved rounds)"
    B.interleaved_rounds(benchmark, cases, lambda case: _time_once(case, timer), g.rounds)
    st = traffic.stats(g.mix)
    benchmark.extra_info.update(
        interleaved=True,
        timer=timer_name,
        title=g.title,
        mix=g.mix,
        kind=g.kind,
        transport=KIND_LABEL[g.kind],
        payloads=st["payloads"],
        payload_bytes=st["bytes"],
        wire_bytes=sum(map(len, traffic.messages(g.mix, g.kind))),
        unavailable=missing,
        cases=[dict(case.info, id=case.key, times=case.times) for case in cases],
    )


def test_closed_frames_break_the_libraries() -> None:
    """Why hikari and discord.py are absent for closed frames: their zstd
    context stops at the end of the first frame (not a benchmark; it documents
    the fact the closed-frames group relies on)."""
    msgs = traffic.zstd_frames("realistic")[:3]
    b = B.baseline("hikari-zstd")
    with pytest.raises(Exception):
        b.run(b.new(msgs), msgs)
    # and hikari's own transport, not only its logic reproduced here
    from hikari.impl import shard

    ws = B.ws_messages(msgs)
    transport = B.hikari_transport(shard._GatewayZstdStreamTransport, ws, B.hikari_loads())
    with pytest.raises(Exception):
        B.hikari_run(transport, ws)
    d = get_baseline("dpy-zstd-orjson")
    try:
        n, _ = d.run(d.new(msgs), msgs)
    except Exception:
        pass
    else:  # zstandard's decompressobj returns b"" after the first frame: JSON error or nothing
        raise AssertionError(f"discord.py decoded {n} closed frames")


def test_hikari_logic_matches_hikari() -> None:
    """The bare-loop hikari baselines give exactly what hikari's own
    transports give for the same frames (every payload, in order): the
    reproduction is hikari's logic, not an approximation of it."""
    from hikari.impl import shard

    for kind, cls in (("zlib", shard._GatewayZlibStreamTransport), ("zstd", shard._GatewayZstdStreamTransport)):
        msgs = traffic.messages("presence-heavy", kind)[:400]
        if kind == "zlib":  # and a payload split over three messages
            big = msgs[1]
            msgs = [msgs[0], big[:5], big[5:9], big[9:], *msgs[2:]]
        ws = B.ws_messages(msgs)
        transport = B.hikari_transport(cls, ws, B.hikari_loads())
        stock = []
        for _ in range(len(msgs) - (2 if kind == "zlib" else 0)):
            coro = transport.receive_json()
            with pytest.raises(StopIteration) as done:
                coro.send(None)
            stock.append(done.value.value)
        b = B.baseline(B.HIKARI[kind])
        seen: list = []
        loads = B.hikari_loads()
        b2 = B.Baseline(b.id, b.label, b.kind, b.family, b.new,
                        (B._hikari_zlib_logic if kind == "zlib" else B._hikari_zstd_logic)(lambda pl: seen.append(loads(pl)) or seen[-1]))
        n, _ = b2.run(b2.new(msgs), msgs)
        assert n == len(stock) and seen == stock
