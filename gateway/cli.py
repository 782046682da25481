"""``python -m gateway demo`` and ``python -m gateway run`` (a contract scripts rely on).

``run`` prints one JSON line per dispatch on stdout (``{"shard":..,"t":..,"s":..}``, plus
``"d"`` with ``--full``) and lifecycle lines on stderr.  Exit status: 0 when ``--max-events`` or
``--duration`` is reached (or the gateway ended the run cleanly), 1 on a fatal close code
(stderr names code and reason), 2 on a usage error, 3 when ``/gateway/bot`` refuses the token.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import sys
import time
from typing import Any

import orjson

import mijcodec

from .manager import ShardManager, parse_shard_ids
from .ratelimit import Backoff
from .shard import (DEFAULT_API_URL, FATAL_CLOSE_CODES, GatewayAuthError, GatewayClosedFatal,
                    GatewayEvent, LifecycleEvent, default_compress)

#: GUILDS | GUILD_MESSAGES | GUILD_MESSAGE_REACTIONS | GUILD_MESSAGE_TYPING | DIRECT_MESSAGES
DEFAULT_INTENTS = 1 | 512 | 1024 | 2048 | 4096

EXIT_OK = 0
EXIT_FATAL = 1
EXIT_USAGE = 2
EXIT_AUTH = 3


def _err(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _lifecycle_line(ev: LifecycleEvent) -> str | None:
    data = " ".join(f"{k}={v}" for k, v in ev.data.items() if v is not None)
    if ev.name == "loop_blocked":
        return f"[shard {ev.shard_id}] warning: event loop blocked {ev.data['lag']:.3f}s"
    return f"[shard {ev.shard_id}] {ev.name}{(' ' + data) if data else ''}"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gateway",
                                description="Discord gateway client built on mijcodec")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="connect and print every dispatch as a JSON line")
    run.add_argument("--token", default=None, help="bot token (default: $DISCORD_TOKEN)")
    run.add_argument("--api-url", default=DEFAULT_API_URL,
                     help=f"REST base URL; the gateway URL comes from its /gateway/bot "
                          f"(default {DEFAULT_API_URL})")
    run.add_argument("--intents", type=int, default=DEFAULT_INTENTS,
                     help=f"gateway intents (default {DEFAULT_INTENTS})")
    run.add_argument("--compress", choices=["zstd-stream", "zlib-stream", "none"], default=None,
                     help="transport compression (default zstd-stream, else zlib-stream)")
    g = run.add_mutually_exclusive_group()
    g.add_argument("--shards", type=int, default=None,
                   help="run all N shards (default: /gateway/bot's recommendation)")
    g.add_argument("--shard-ids", default=None, help="run these shard ids (A-B or A,B,C)")
    run.add_argument("--shard-count", type=int, default=None,
                     help="total shard count (with --shard-ids)")
    run.add_argument("--events", default=None, help="only print these dispatches (NAME,...)")
    run.add_argument("--max-events", type=int, default=None, help="exit 0 after N dispatches")
    run.add_argument("--duration", type=float, default=None, help="exit 0 after S seconds")
    run.add_argument("--full", action="store_true", help="include d in each line")
    run.add_argument("--state-file", default=None,
                     help="session state JSON: resume from it at start, write it at exit")
    run.add_argument("-v", "--verbose", action="store_true", help="log to stderr")

    demo = sub.add_parser("demo", help="run against the built-in simulator with faults")
    demo.add_argument("--duration", type=float, default=12.0, help="seconds of traffic (default 12)")
    demo.add_argument("--rate", type=float, default=500.0, help="dispatches per second per shard")
    demo.add_argument("--shards", type=int, default=2)
    demo.add_argument("--compress", choices=["zstd-stream", "zlib-stream", "none"], default=None)
    demo.add_argument("--seed", type=int, default=None)
    demo.add_argument("-v", "--verbose", action="store_true")
    from .bridge_cli import add_parsers  # bridge, consume: Redis scale-out
    add_parsers(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR,
                        stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    try:
        if hasattr(args, "async_main"):
            return asyncio.run(args.async_main(args))
        if args.command == "run":
            return asyncio.run(_run(args, parser))
        return asyncio.run(_demo(args))
    except KeyboardInterrupt:
        return 130


# ---------------------------------------------------------------------------- run
async def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    token = args.token or os.environ.get("DISCORD_TOKEN")
    if not token:
        _err("error: no token (--token or DISCORD_TOKEN)")
        return EXIT_USAGE
    shard_ids = None
    shard_count = args.shards
    if args.shard_ids is not None:
        if args.shard_count is None:
            _err("error: --shard-ids needs --shard-count")
            return EXIT_USAGE
        try:
            shard_ids = parse_shard_ids(args.shard_ids)
        except ValueError as exc:
            _err(f"error: {exc}")
            return EXIT_USAGE
        shard_count = args.shard_count
        if any(not 0 <= i < shard_count for i in shard_ids):
            _err("error: shard ids must be in [0, shard-count)")
            return EXIT_USAGE
    elif args.shard_count is not None:
        shard_count = args.shard_count
    compress = args.compress or default_compress()
    wanted = set(args.events.split(",")) if args.events else None
    max_events = args.max_events
    done = asyncio.Event()
    count = 0
    out = sys.stdout

    def on_dispatch(ev: GatewayEvent) -> None:
        nonlocal count
        if wanted is not None and ev.t not in wanted:
            return
        if max_events is not None and count >= max_events:
            return
        obj: dict[str, Any] = {"shard": ev.shard_id, "t": ev.t, "s": ev.s}
        if args.full:
            obj["d"] = ev.d
        out.write(orjson.dumps(obj).decode() + "\n")
        out.flush()
        count += 1
        if max_events is not None and count >= max_events:
            done.set()

    def on_lifecycle(ev: LifecycleEvent) -> None:
        line = _lifecycle_line(ev)
        if line:
            _err(line)

    manager = ShardManager(token, intents=args.intents, api_url=args.api_url,
                           shard_count=shard_count, shard_ids=shard_ids,
                           state_file=args.state_file, compress=compress)
    manager.on("*", on_dispatch)
    for name in ("connected", "ready", "resumed", "disconnected", "reconnecting",
                 "invalid_session", "zombie", "loop_blocked"):
        manager.on(name, on_lifecycle)
    keep = args.state_file is not None
    try:
        await manager.start()
    except GatewayAuthError as exc:
        _err(f"error: {exc}")
        await manager.close(keep_sessions=keep)
        return EXIT_AUTH
    except Exception as exc:  # network errors, bad URL
        _err(f"error: cannot reach {args.api_url}: {exc!r}")
        await manager.close(keep_sessions=keep)
        return EXIT_FATAL
    _err(f"[gateway] {len(manager.shards)} shard(s) of {manager.shard_count}, compress="
         f"{compress}, codec={mijcodec.IMPLEMENTATION}")
    runner = asyncio.ensure_future(manager.run())
    waiter = asyncio.ensure_future(done.wait())
    try:
        aws = {runner, waiter}
        await asyncio.wait(aws, timeout=args.duration, return_when=asyncio.FIRST_COMPLETED)
        if runner.done():
            exc = runner.exception()
            if isinstance(exc, GatewayClosedFatal):
                meaning = FATAL_CLOSE_CODES.get(exc.code, "fatal")
                _err(f"fatal: shard {exc.shard_id} closed with code {exc.code} ({meaning}): "
                     f"{exc.reason or '-'}")
                return EXIT_FATAL
            if exc is not None:
                _err(f"error: {exc!r}")
                return EXIT_FATAL
            return EXIT_OK
        reason = "max-events reached" if done.is_set() else "duration reached"
        _err(f"[gateway] {reason} ({count} events); closing")
        await manager.close(keep_sessions=keep)
        try:
            await asyncio.wait_for(runner, 10)
        except (GatewayClosedFatal, asyncio.TimeoutError):
            pass
        return EXIT_OK
    finally:
        waiter.cancel()
        if not runner.done():
            runner.cancel()
            try:
                await runner
            except BaseException:
                pass


# ---------------------------------------------------------------------------- demo
async def _demo(args: argparse.Namespace) -> int:
    from .testing import GatewaySimulator, verify_delivery

    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    compress = args.compress or default_compress()
    interval = 0.25
    sim = GatewaySimulator(heartbeat_interval=interval, shards=args.shards,
                           max_concurrency=min(2, args.shards), seed=seed)
    sim.replay_overlap = 3  # replays overlap what was delivered: de-duplication by seq shows
    await sim.start()
    received: dict[int, list[GatewayEvent]] = {}

    def on_dispatch(ev: GatewayEvent) -> None:
        received.setdefault(ev.shard_id, []).append(ev)

    lifecycle_log: list[str] = []

    def on_lifecycle(ev: LifecycleEvent) -> None:
        line = _lifecycle_line(ev)
        if line:
            lifecycle_log.append(line)

    manager = ShardManager(sim.token, intents=DEFAULT_INTENTS, api_url=sim.api_url,
                           compress=compress, identify_period=0.5,
                           invalid_session_delay=lambda: 0.2 + 0.3 * rng.random(),
                           stable_after=1.0)
    manager.on("*", on_dispatch)
    for name in ("ready", "resumed", "disconnected", "reconnecting", "invalid_session", "zombie"):
        manager.on(name, on_lifecycle)
    status_stop = asyncio.Event()
    faults: list[str] = []
    tty = sys.stderr.isatty()

    window: list[tuple[float, int]] = []  # (time, total) samples for a 1 s moving rate

    def status() -> str:
        ms = manager.metrics().values()
        total = sum(len(v) for v in received.values())
        lat = [m.latency for m in ms if m.latency is not None]
        lat_s = f"{1000 * sum(lat) / len(lat):.1f} ms" if lat else "-"
        now = time.monotonic()
        window.append((now, total))
        while len(window) > 2 and now - window[0][0] > 1.0:
            window.pop(0)
        dt = now - window[0][0]
        rate = (total - window[0][1]) / dt if dt > 0 else 0.0
        return (f"events {total:>7} | {rate:7.0f} ev/s | latency {lat_s:>8} | "
                f"reconnects {sum(m.reconnects for m in ms):>2} | resumes {sum(m.resumes for m in ms):>2}"
                f" | faults {len(faults):>2} | {compress} | codec {mijcodec.IMPLEMENTATION}")

    async def status_loop() -> None:
        while not status_stop.is_set():
            sys.stderr.write("\r" + status() + ("\x1b[K" if tty else ""))
            sys.stderr.flush()
            try:
                await asyncio.wait_for(status_stop.wait(), 0.1)
            except asyncio.TimeoutError:
                pass

    status_task = None
    try:
        await manager.start()
        for shard in manager.shards.values():
            shard.backoff = Backoff(base=0.1, cap=1.0, rng=rng.random)
        await asyncio.gather(*(s.wait_until_ready(10) for s in manager.shards.values()))
        status_task = asyncio.ensure_future(status_loop())
        runner = asyncio.ensure_future(manager.run())
        sim.start_traffic(args.rate, seed=seed)  # each event goes to every shard's session
        script = [
            ("op 7 RECONNECT", lambda c: sim.send_reconnect(c)),
            ("op 1 heartbeat request", lambda c: sim.request_heartbeat(c)),
            ("op 9 INVALIDATE_SESSION true", lambda c: sim.invalidate_session(True, c)),
            ("dropped HEARTBEAT_ACK (zombie)", None),
            ("corrupt frame", None),
            ("close 4000 (non-fatal)", lambda c: sim.close(4000, "", c)),
            ("op 7 before HELLO", None),
            ("close 4009 (identify anew)", lambda c: sim.close(4009, "", c)),
            ("op 9 INVALIDATE_SESSION false", lambda c: sim.invalidate_session(False, c)),
            ("TCP reset without close frame", lambda c: sim.kill(c)),
        ]
        step = args.duration / (len(script) + 1)
        for i, (name, action) in enumerate(script):
            await asyncio.sleep(step)
            live = [c for c in sim.live_connections() if c.ready]
            if not live:
                continue
            conn = live[i % len(live)]
            if name.startswith("dropped"):
                sim.drop_acks(1)
            elif name.startswith("corrupt"):
                sim.corrupt_next(1)
            elif name.startswith("op 7 before"):
                sim.reconnect_before_hello += 1
                await sim.send_reconnect(conn)
            else:
                await action(conn)
            faults.append(name)
            if runner.done():
                break
        await asyncio.sleep(step)
        await sim.stop_traffic()
        # let every shard catch up with its session log
        deadline = time.monotonic() + 10
        def caught_up() -> bool:
            for i, shard in manager.shards.items():
                s = sim.sessions.get(shard.session_id or "")
                if s is None or shard.seq != s.seq or not shard._established.is_set():
                    return False
            return True
        while not caught_up() and time.monotonic() < deadline and not runner.done():
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
    finally:
        status_stop.set()
        if status_task is not None:
            await status_task
            sys.stderr.write("\r" + status() + "\n")
        metrics = manager.metrics()
        await manager.close(keep_sessions=False)
        await sim.stop()

    # ---- verification: per shard, split at READY; each segment must equal its session log
    sim_total, problems = verify_delivery(sim, received)
    checked_sessions = sum(1 for evs in received.values() for ev in evs if ev.t == "READY")
    total = sum(len(v) for v in received.values())
    m_all = list(metrics.values())
    w = sys.stderr.write
    w("\n== demo summary ==\n")
    w(f"seed {seed}, {len(manager.shards)} shards, compress {compress}, codec {mijcodec.IMPLEMENTATION}\n")
    w(f"faults injected ({len(faults)}): {', '.join(faults)}\n")
    w(f"dispatches logged by the simulator: {sim_total} in {checked_sessions} sessions\n")
    w(f"dispatches delivered:               {total}\n")
    w(f"replayed duplicates dropped by seq: {sum(m.duplicates for m in m_all)}\n")
    w(f"reconnects {sum(m.reconnects for m in m_all)}, resumes {sum(m.resumes for m in m_all)}, "
      f"identifies {sum(m.identifies for m in m_all)}, zombies {sum(m.zombies for m in m_all)}, "
      f"codec errors {sum(m.codec_errors for m in m_all)}, invalid sessions "
      f"{sum(m.invalid_sessions for m in m_all)}\n")
    bi = sum(m.bytes_in for m in m_all)
    bo = sum(m.bytes_decompressed for m in m_all)
    if bi:
        w(f"wire bytes {bi}, decompressed {bo} (ratio {bo / bi:.2f}x)\n")
    if args.verbose:
        for line in lifecycle_log:
            w(line + "\n")
    if sim_total == total and not problems:
        w(f"OK: all {total} dispatches arrived exactly once and in order\n")
        return EXIT_OK
    for p in problems:
        w(f"PROBLEM: {p}\n")
    w("FAILED: dispatches lost, duplicated or reordered\n")
    return EXIT_FATAL
