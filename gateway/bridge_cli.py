"""``python -m gateway bridge`` and ``python -m gateway consume``.

``bridge`` runs the shards this process holds leases for and publishes every dispatch to the
Redis streams ``{prefix}:events:{t}`` (fields ``shard``, ``s``, ``session``, ``d``: the JSON text
of ``d`` exactly as received).  Run the same command on as many processes and machines as you
like: they share the shards, and the survivors take over the shards of one that dies.
``consume`` reads those streams through a consumer group and prints the same JSON lines as
``run``.  Lifecycle lines go to stderr; exit codes are ``run``'s (0 ``--duration``/``--max-events``,
1 fatal, 2 usage, 3 auth, 130 SIGINT, 143 SIGTERM; on a signal ``bridge`` first hands every
shard over).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from typing import Any, Optional

import orjson

__all__ = ["add_parsers", "bridge_main", "consume_main"]


def add_parsers(sub: Any) -> None:
    """Add ``bridge`` and ``consume`` to ``python -m gateway``'s subparsers; each sets
    ``async_main`` (``await args.async_main(args)`` returns the exit status)."""
    from .cli import DEFAULT_INTENTS
    from .shard import DEFAULT_API_URL

    b = sub.add_parser("bridge", help="run leased shards and publish dispatches to Redis Streams")
    b.add_argument("--redis", required=True, help="Redis URL, e.g. redis://127.0.0.1:6379/0")
    b.add_argument("--token", default=None, help="bot token (default: $DISCORD_TOKEN)")
    b.add_argument("--api-url", default=DEFAULT_API_URL,
                   help=f"REST base URL (default {DEFAULT_API_URL})")
    b.add_argument("--intents", type=int, default=DEFAULT_INTENTS,
                   help=f"gateway intents (default {DEFAULT_INTENTS})")
    g = b.add_mutually_exclusive_group()
    g.add_argument("--shards", type=int, default=None,
                   help="shard count; all N shards are candidates (default: /gateway/bot's)")
    g.add_argument("--shard-ids", default=None,
                   help="only these shard ids are candidates (A-B or A,B,C)")
    b.add_argument("--shard-count", type=int, default=None, help="total shards (with --shard-ids)")
    b.add_argument("--events", default=None,
                   help="publish only these dispatches (NAME,...); the others are not parsed")
    b.add_argument("--prefix", default="gateway", help="key prefix (default gateway)")
    b.add_argument("--maxlen", type=int, default=100_000,
                   help="approximate MAXLEN of each stream (default 100000; 0: no trimming)")
    b.add_argument("--compress", choices=["zstd-stream", "zlib-stream", "none"], default=None,
                   help="transport compression (default zstd-stream, else zlib-stream)")
    b.add_argument("--lease-ttl", type=float, default=6.0,
                   help="seconds a shard lease lives without renewal (default 6; renewed every "
                        "TTL/3)")
    b.add_argument("--buffer", type=int, default=10_000,
                   help="events buffered while Redis is slow before shards close resumably "
                        "(default 10000)")
    b.add_argument("--identify-period", type=float, default=5.0,
                   help="seconds between IDENTIFYs of one bucket (Discord: 5; for tests)")
    b.add_argument("--duration", type=float, default=None, help="hand over and exit 0 after S s")
    b.add_argument("-v", "--verbose", action="count", default=0,
                   help="log to stderr (-v INFO, -vv DEBUG)")
    b.set_defaults(async_main=bridge_main)

    c = sub.add_parser("consume", help="read bridged dispatches through a consumer group")
    c.add_argument("--redis", required=True, help="Redis URL")
    c.add_argument("--group", required=True, help="consumer group name")
    c.add_argument("--events", default=None, help="only these streams (NAME,...; default all)")
    c.add_argument("--prefix", default="gateway", help="key prefix (default gateway)")
    c.add_argument("--consumer", default=None, help="consumer name (default host:pid)")
    c.add_argument("--claim-idle", type=float, default=30.0,
                   help="take over entries pending this long at another consumer (default 30 s)")
    c.add_argument("--max-events", type=int, default=None, help="exit 0 after N events")
    c.add_argument("--duration", type=float, default=None, help="exit 0 after S seconds")
    c.add_argument("--full", action="store_true", help="include d in each line")
    c.add_argument("-v", "--verbose", action="count", default=0,
                   help="log to stderr (-v INFO, -vv DEBUG)")
    c.set_defaults(async_main=consume_main)


def _err(line: str) -> None:
    from .cli import _err as err
    err(line)


def _stop_on_signals(stop: asyncio.Event, got: list) -> None:
    loop = asyncio.get_running_loop()

    def on(sig: int) -> None:
        got.append(sig)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, on, sig)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - not on this platform
            pass


def _signal_status(cli: Any, got: list) -> int:
    """``run``'s statuses: 130 after SIGINT, 143 after SIGTERM."""
    if not got:
        return cli.EXIT_OK
    return getattr(cli, "EXIT_SIGINT", 130) if got[0] == signal.SIGINT else \
        getattr(cli, "EXIT_SIGTERM", 143)


def _redact(cli: Any, token: str) -> None:
    """Keep the token out of log lines, as ``run`` does (its formatter, if installed)."""
    import logging

    fmt_cls = getattr(cli, "_RedactingFormatter", None)
    for h in logging.getLogger().handlers:
        if fmt_cls is not None and isinstance(h.formatter, fmt_cls):
            h.formatter.secrets.extend(t for t in (token, token[4:] if token.startswith("Bot ")
                                                   else token) if t)


def _shard_plan(args: argparse.Namespace) -> tuple[Optional[list[int]], Optional[int], Optional[str]]:
    """(ids or None for all, shard count or None for /gateway/bot's, usage error)."""
    from .manager import parse_shard_ids

    if args.shard_ids is not None:
        if args.shard_count is None:
            return None, None, "--shard-ids needs --shard-count"
        try:
            ids = parse_shard_ids(args.shard_ids)
        except ValueError as exc:
            return None, None, str(exc)
        if any(not 0 <= i < args.shard_count for i in ids):
            return None, None, "shard ids must be in [0, shard-count)"
        return ids, args.shard_count, None
    return None, args.shards if args.shards is not None else args.shard_count, None


# ---------------------------------------------------------------------------- bridge
async def bridge_main(args: argparse.Namespace) -> int:
    import aiohttp

    import mijcodec

    from . import cli
    from .cluster import ShardCluster
    from .manager import ShardManager
    from .redis import (RedisEventSink, RedisIdentifyQueue, RedisMembers, RedisSessionStore,
                        RedisShardLeases, connect)
    from .shard import (FATAL_CLOSE_CODES, GatewayAuthError, GatewayClosedFatal,
                        default_compress, fetch_gateway_bot)

    token = args.token or os.environ.get("DISCORD_TOKEN")
    if not token:
        _err("error: no token (--token or DISCORD_TOKEN)")
        return cli.EXIT_USAGE
    _redact(cli, token)
    ids, shard_count, problem = _shard_plan(args)
    if problem:
        _err(f"error: {problem}")
        return cli.EXIT_USAGE
    if args.lease_ttl <= 0 or args.buffer <= 0 or args.maxlen < 0:
        _err("error: --lease-ttl and --buffer must be positive, --maxlen not negative")
        return cli.EXIT_USAGE
    compress = args.compress or default_compress()
    wanted = set(args.events.split(",")) if args.events else None

    stop = asyncio.Event()
    signals: list = []
    _stop_on_signals(stop, signals)
    http = aiohttp.ClientSession()
    redis = connect(args.redis)
    manager = cluster = sink = None
    try:
        try:
            info = await fetch_gateway_bot(http, args.api_url, token)
        except GatewayAuthError as exc:
            _err(f"error: {exc}")
            return cli.EXIT_AUTH
        except Exception as exc:
            _err(f"error: cannot reach {args.api_url}: {exc!r}")
            return cli.EXIT_FATAL
        try:
            await redis.ping()
        except Exception as exc:
            _err(f"error: cannot reach Redis at {args.redis}: {exc!r}")
            return cli.EXIT_FATAL
        if shard_count is None:
            shard_count = int(info.get("shards") or 1)
        if ids is None:
            ids = list(range(shard_count))
        limits = info.get("session_start_limit") or {}

        async def refresh() -> dict:
            again = await fetch_gateway_bot(http, args.api_url, token)
            return again.get("session_start_limit") or {}

        prefix = args.prefix
        leases = RedisShardLeases(redis, prefix=prefix, ttl=args.lease_ttl)
        members = RedisMembers(redis, leases.owner, prefix=prefix, ttl=args.lease_ttl)
        queue = RedisIdentifyQueue(redis, prefix=prefix, period=args.identify_period,
                                   margin=min(0.25, args.identify_period / 10))
        await queue.configure(limits, refresh)
        store = RedisSessionStore(redis, prefix=prefix, seq_from_sink=True, leases=leases)
        def on_fenced(shard_id: int, token: Optional[str]) -> None:
            if cluster is not None:
                cluster.on_fenced(shard_id, token)

        sink = RedisEventSink(redis, prefix=prefix, maxlen=args.maxlen or None, events=wanted,
                              leases=leases, max_events=args.buffer, on_fenced=on_fenced)
        manager = ShardManager(token, intents=args.intents, api_url=args.api_url,
                               shard_count=shard_count, shard_ids=[], http=http,
                               identify_queue=queue, session_store=store, sink=sink,
                               compress=compress)

        def on_lifecycle(ev: Any) -> None:
            line = cli._lifecycle_line(ev)
            if line:
                _err(line)

        for name in ("ready", "resumed", "disconnected", "reconnecting", "invalid_session",
                     "zombie", "loop_blocked"):
            manager.on(name, on_lifecycle)
        cluster = ShardCluster(manager, leases, ids, members=members, sink=sink,
                               session_store=store, report=_err)
        await manager.start()
        _err(f"[bridge] owner {leases.owner}: candidates {_ranges(ids)} of {shard_count}, "
             f"prefix {prefix}, max_concurrency {queue.max_concurrency}, lease ttl "
             f"{args.lease_ttl}s, compress={compress}, codec={mijcodec.IMPLEMENTATION}")
        async def supervise() -> None:
            # run() returns at once while no shard was added yet (nothing to wait for)
            while True:
                await manager.run()
                if manager.shards or stop.is_set():
                    return
                await asyncio.sleep(0.1)

        runner = asyncio.ensure_future(supervise())
        ticker = asyncio.ensure_future(cluster.run())
        stopper = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({runner, ticker, stopper}, timeout=args.duration,
                               return_when=asyncio.FIRST_COMPLETED)
            if runner.done() and runner.exception() is not None:
                exc = runner.exception()
                await cluster.stop(handover=False)
                if isinstance(exc, GatewayClosedFatal):
                    meaning = FATAL_CLOSE_CODES.get(exc.code, "fatal")
                    _err(f"fatal: shard {exc.shard_id} closed with code {exc.code} ({meaning}): "
                         f"{exc.reason or '-'}")
                else:
                    _err(f"error: {exc!r}")
                return cli.EXIT_FATAL
            why = signal.Signals(signals[0]).name if signals else "duration reached"
            _err(f"[bridge] {why}; handing over {len(cluster.running)} shard(s)")
            await cluster.stop(handover=True)
            return _signal_status(cli, signals)
        finally:
            stopper.cancel()
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
            if not runner.done():
                await manager.close(keep_sessions=True)
                try:
                    await asyncio.wait_for(runner, 10)
                except BaseException:
                    runner.cancel()
            if sink is not None:
                await sink.close(timeout=5.0)
                _err(f"[bridge] published {sink.published} event(s), skipped {sink.skipped} "
                     f"replayed, fenced {sink.fenced}, Redis write retries {sink.errors}")
    finally:
        await http.close()
        await redis.aclose()


def _ranges(ids: list[int]) -> str:
    out = []
    ids = sorted(ids)
    i = 0
    while i < len(ids):
        j = i
        while j + 1 < len(ids) and ids[j + 1] == ids[j] + 1:
            j += 1
        out.append(str(ids[i]) if i == j else f"{ids[i]}-{ids[j]}")
        i = j + 1
    return ",".join(out) or "-"


# ---------------------------------------------------------------------------- consume
async def consume_main(args: argparse.Namespace) -> int:
    from . import cli
    from .redis import RedisConsumer, connect

    if args.claim_idle <= 0:
        _err("error: --claim-idle must be positive")
        return cli.EXIT_USAGE
    redis = connect(args.redis, timeout=5.0)
    stop = asyncio.Event()
    signals: list = []
    _stop_on_signals(stop, signals)
    try:
        try:
            await redis.ping()
        except Exception as exc:
            _err(f"error: cannot reach Redis at {args.redis}: {exc!r}")
            return cli.EXIT_FATAL
        events = args.events.split(",") if args.events else None
        consumer = RedisConsumer(redis, args.group, name=args.consumer, events=events,
                                 prefix=args.prefix, claim_idle=args.claim_idle, block=0.5)
        _err(f"[consume] group {args.group} as {consumer.name}, streams "
             f"{','.join(events) if events else args.prefix + ':events:*'}")
        out = sys.stdout
        count = 0
        done = asyncio.Event()

        async def loop() -> None:
            nonlocal count
            async for ev in consumer:
                obj: dict[str, Any] = {"shard": ev.shard, "t": ev.t, "s": ev.s}
                if args.full:
                    obj["d"] = ev.d
                out.write(orjson.dumps(obj).decode() + "\n")
                out.flush()
                count += 1
                if args.max_events is not None and count >= args.max_events:
                    await consumer.aclose()  # acks this last one
                    done.set()
                    return

        reader = asyncio.ensure_future(loop())
        stopper = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({reader, stopper}, timeout=args.duration,
                               return_when=asyncio.FIRST_COMPLETED)
            if reader.done() and reader.exception() is not None:
                _err(f"error: {reader.exception()!r}")
                return cli.EXIT_FATAL
            reason = ("max-events reached" if done.is_set()
                      else signal.Signals(signals[0]).name if signals else "duration reached")
            _err(f"[consume] {reason} ({count} events); closing")
            return cli.EXIT_OK if done.is_set() else _signal_status(cli, signals)
        finally:
            stopper.cancel()
            if not reader.done():
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)
    finally:
        await redis.aclose()
