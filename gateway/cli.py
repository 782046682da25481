"""``python -m gateway demo`` and ``python -m gateway run`` (a contract scripts rely on).

See :data:`RUN_CONTRACT` (printed by ``python -m gateway run --help``) for the stdout line
format, stderr, signals, the state file and every exit status.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import logging
import math
import os
import random
import signal
import sys
import threading
import time
from typing import Any, Callable

import orjson

import mijcodec

from .errors import GatewayAuthError, GatewayClosedFatal
from .manager import ShardManager, parse_shard_ids
from .stores import load_sessions, save_sessions
from .policy import FATAL_CLOSE_CODES
from .protocols import DispatchRecord
from .ratelimit import Backoff, MemoryIdentifyQueue
from .shard import DEFAULT_API_URL, LifecycleEvent, default_compress

#: GUILDS | GUILD_MESSAGES | GUILD_MESSAGE_REACTIONS | GUILD_MESSAGE_TYPING | DIRECT_MESSAGES
DEFAULT_INTENTS = 1 | 512 | 1024 | 2048 | 4096

EXIT_OK = 0
EXIT_FATAL = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_SIGINT = 130
EXIT_STDOUT_CLOSED = 141
EXIT_SIGTERM = 143

RUN_CONTRACT = f"""\
stdout: one JSON object per line per dispatch, in order per shard:
  {{"shard":0,"t":"MESSAGE_CREATE","s":42}}   (--full adds "d")
  Only dispatches go to stdout; --events filters by name, --max-events counts printed lines.
  Output never blocks the connection: when the reader falls behind, the shard closes
  resumably, waits until the output drained, and RESUMEs (the gateway replays the events).
stderr: lifecycle lines ("[shard 0] ready session_id=...", "[shard 0] disconnected code=4900 ..."),
  "[gateway] ..." lines (start, session-start-limit waits, why it stops), errors; -v adds log
  lines (INFO), -vv DEBUG.  stderr never blocks the connection either (beyond 10000 waiting
  lines, lines are dropped and counted).  The token never appears in any output.
--state-file FILE: sessions are loaded at start (RESUME instead of IDENTIFY) and saved whenever
  a session starts and at exit; the saved seq is the last event printed (or filtered out), so
  the next run with the same file continues without a gap.  With a state file every exit
  closes resumably (4901), without one with 1000.
--duration counts from the start (including any session-start-limit wait).
exit status:
  {EXIT_OK}    --max-events or --duration reached, or the gateway ended the run
  {EXIT_FATAL}    fatal close code (4004, 4010-4014; stderr names code and reason), or the REST
       API cannot be reached
  {EXIT_USAGE}    usage error (bad or conflicting arguments), before any connection
  {EXIT_AUTH}    /gateway/bot answered 401 (bad token)
  {EXIT_SIGINT}  SIGINT: shards closed, state file saved
  {EXIT_STDOUT_CLOSED}  stdout was closed (e.g. | head): shards closed, state file saved
  {EXIT_SIGTERM}  SIGTERM: shards closed, state file saved
"""


class _StderrWriter:
    """stderr lines written by a thread, so a stalled stderr never blocks the event loop.
    At most ``limit`` lines wait; beyond that lines are dropped and the number dropped is
    said once stderr moves again."""

    def __init__(self, fd: int = 2, limit: int = 10_000) -> None:
        self.fd = fd
        self.limit = limit
        self.dropped = 0
        self._lines: collections.deque[str] = collections.deque()
        self._cond = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="gateway-stderr", daemon=True)
        self._thread.start()

    def write(self, line: str) -> None:
        with self._cond:
            if len(self._lines) >= self.limit:
                self.dropped += 1
                return
            self._lines.append(line)
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._lines and not self._closing:
                    self._cond.wait()
                if not self._lines:
                    return
                lines = list(self._lines)
                self._lines.clear()
                dropped, self.dropped = self.dropped, 0
            if dropped:
                lines.append(f"[gateway] {dropped} stderr lines dropped (stderr was not read)")
            data = ("\n".join(lines) + "\n").encode(errors="replace")
            try:
                while data:
                    data = data[os.write(self.fd, data):]
            except OSError:  # stderr is gone: nothing left to tell
                return

    def close(self, timeout: float = 2.0) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join(timeout)


_stderr: _StderrWriter | None = None


def _err(line: str) -> None:
    if _stderr is not None:
        _stderr.write(line)
        return
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):  # stderr gone too: nothing left to tell
        pass


class _WriterHandler(logging.Handler):
    """Log records into the stderr writer thread (formatted, redacted)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            _err(self.format(record))
        except Exception:  # pragma: no cover - logging must never raise
            pass


class _RedactingFormatter(logging.Formatter):
    """Every log line, traceback included, with the token replaced by ``***``."""

    def __init__(self, fmt: str, secrets: list[str]) -> None:
        super().__init__(fmt)
        self.secrets = [s for s in secrets if s]

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        for s in self.secrets:
            text = text.replace(s, "***")
        return text


def _lifecycle_line(ev: LifecycleEvent) -> str | None:
    data = " ".join(f"{k}={v}" for k, v in ev.data.items() if v is not None)
    if ev.name == "loop_blocked":
        return f"[shard {ev.shard_id}] warning: event loop blocked {ev.data['lag']:.3f}s"
    return f"[shard {ev.shard_id}] {ev.name}{(' ' + data) if data else ''}"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gateway",
                                description="Discord gateway client built on mijcodec")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="connect and print every dispatch as a JSON line",
                         description="Connect to the Discord gateway and print every dispatch "
                                     "as one JSON line on stdout.",
                         epilog=RUN_CONTRACT, formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("--token", default=None, help="bot token (default: $DISCORD_TOKEN)")
    run.add_argument("--api-url", default=DEFAULT_API_URL,
                     help=f"REST base URL; the gateway URL comes from its /gateway/bot "
                          f"(default {DEFAULT_API_URL})")
    run.add_argument("--intents", type=int, default=DEFAULT_INTENTS,
                     help=f"gateway intents, >= 0 (default {DEFAULT_INTENTS})")
    run.add_argument("--compress", choices=["zstd-stream", "zlib-stream", "none"], default=None,
                     help="transport compression (default zstd-stream, else zlib-stream)")
    g = run.add_mutually_exclusive_group()
    g.add_argument("--shards", type=int, default=None,
                   help="run all N >= 1 shards (default: /gateway/bot's recommendation)")
    g.add_argument("--shard-ids", default=None,
                   help="run these shard ids (A-B or A,B,C; each once) out of --shard-count")
    run.add_argument("--shard-count", type=int, default=None,
                     help="total shard count (only with --shard-ids)")
    run.add_argument("--events", default=None, help="only print these dispatches (NAME,...)")
    run.add_argument("--max-events", type=int, default=None,
                     help="exit 0 after N >= 1 printed dispatches")
    run.add_argument("--duration", type=float, default=None,
                     help="exit 0 after S > 0 seconds, counted from the start")
    run.add_argument("--full", action="store_true", help="include d in each line")
    run.add_argument("--state-file", default=None,
                     help="session state JSON: resume from it at start, save it as sessions "
                          "start and at exit")
    run.add_argument("-v", "--verbose", action="count", default=0,
                     help="log to stderr (-v INFO, -vv DEBUG)")

    demo = sub.add_parser("demo", help="run against the built-in simulator with faults")
    demo.add_argument("--duration", type=float, default=12.0, help="seconds of traffic (default 12)")
    demo.add_argument("--rate", type=float, default=500.0, help="dispatches per second per shard")
    demo.add_argument("--shards", type=int, default=2)
    demo.add_argument("--compress", choices=["zstd-stream", "zlib-stream", "none"], default=None)
    demo.add_argument("--seed", type=int, default=None)
    demo.add_argument("-v", "--verbose", action="count", default=0)
    from .bridge_cli import add_parsers  # bridge, consume: Redis scale-out
    add_parsers(sub)
    return p


class _Usage(Exception):
    pass


def _check_run_args(args: argparse.Namespace) -> dict:
    """Every argument checked before anything connects; ``_Usage`` names the problem."""
    token = args.token or os.environ.get("DISCORD_TOKEN")
    if not token:
        raise _Usage("no token (--token or DISCORD_TOKEN)")
    if args.intents < 0 or args.intents >= 1 << 53:
        raise _Usage("--intents must be a non-negative integer")
    if not args.api_url.startswith(("http://", "https://")):
        raise _Usage("--api-url must be an http(s) URL")
    shard_ids = None
    shard_count = None
    if args.shards is not None:
        if args.shards < 1:
            raise _Usage("--shards must be at least 1")
        if args.shard_count is not None:
            raise _Usage("--shards N runs all N shards; --shard-count goes with --shard-ids")
        shard_count = args.shards
    elif args.shard_ids is not None:
        if args.shard_count is None:
            raise _Usage("--shard-ids needs --shard-count")
        if args.shard_count < 1:
            raise _Usage("--shard-count must be at least 1")
        try:
            shard_ids = parse_shard_ids(args.shard_ids)
        except ValueError as exc:
            raise _Usage(f"--shard-ids: {exc}") from None
        shard_count = args.shard_count
        if any(not 0 <= i < shard_count for i in shard_ids):
            raise _Usage("shard ids must be in [0, shard-count)")
    elif args.shard_count is not None:
        raise _Usage("--shard-count goes with --shard-ids (use --shards N for all N shards)")
    if args.max_events is not None and args.max_events < 1:
        raise _Usage("--max-events must be at least 1")
    if args.duration is not None and not (math.isfinite(args.duration) and args.duration > 0):
        raise _Usage("--duration must be a positive number of seconds")
    wanted = None
    if args.events is not None:
        wanted = {n.strip() for n in args.events.split(",") if n.strip()}
        if not wanted:
            raise _Usage("--events needs at least one dispatch name")
    if args.state_file is not None:
        folder = os.path.dirname(os.path.abspath(args.state_file))
        if not os.path.isdir(folder):
            raise _Usage(f"--state-file: no such directory {folder}")
    return {"token": token, "shard_ids": shard_ids, "shard_count": shard_count, "wanted": wanted}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    secrets: list[str] = []
    checked: dict = {}
    if args.command == "run":
        try:
            checked = _check_run_args(args)
        except _Usage as exc:
            _err(f"python -m gateway run: error: {exc}")
            return EXIT_USAGE
        token = checked["token"]
        secrets = [token, token[4:] if token.startswith("Bot ") else token]
    global _stderr
    level = {0: logging.ERROR, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    if args.command == "run":
        _stderr = _StderrWriter()
        handler: logging.Handler = _WriterHandler()
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_RedactingFormatter("%(levelname)s %(name)s: %(message)s", secrets))
    logging.basicConfig(level=level, handlers=[handler])
    try:
        if hasattr(args, "async_main"):
            return asyncio.run(args.async_main(args))
        if args.command == "run":
            return asyncio.run(_run(args, checked))
        return asyncio.run(_demo(args))
    except KeyboardInterrupt:  # before the signal handlers are installed
        return EXIT_SIGINT
    finally:
        if _stderr is not None:
            logging.getLogger().removeHandler(handler)
            _stderr.close()
            _stderr = None


# ---------------------------------------------------------------------------- run: output
class StdoutSink:
    """The ``run`` command's output as an :class:`~gateway.protocols.EventSink`.

    Lines are formatted on the event loop and written to fd 1 by a thread, so a stalled
    reader never blocks the loop: beyond ``high`` buffered bytes :meth:`offer` says no (the
    shard closes resumably, waits :meth:`wait_writable`, and RESUMEs).  A closed stdout (EPIPE)
    calls ``on_broken``; ``--max-events`` calls ``on_done`` and then refuses every further
    dispatch, so the state file keeps the seq of the last printed one."""

    def __init__(self, *, fd: int = 1, full: bool = False, wanted: set | None = None,
                 max_events: int | None = None, high: int = 1 << 20, low: int = 1 << 18,
                 on_broken: Callable[[], None] = lambda: None,
                 on_done: Callable[[], None] = lambda: None) -> None:
        self.fd = fd
        self.full = full
        self.wants_raw_d = full  # without --full, d is never parsed nor serialised
        self.wanted = wanted
        self.max_events = max_events
        self.high = high
        self.low = low
        self.on_broken = on_broken
        self.on_done = on_done
        self.count = 0
        self.broken = False
        self._loop = asyncio.get_running_loop()
        # (line, shard, session, seq) waiting for the writer thread
        self._chunks: collections.deque[tuple[bytes, int, str | None, int]] = collections.deque()
        #: per shard: (session, seq) of the first line that never reached stdout
        self.unwritten: dict[int, tuple[str | None, int]] = {}
        self._pending = 0
        self._cond = threading.Condition()
        self._closing = False
        self._writable = asyncio.Event()
        self._writable.set()
        self._thread = threading.Thread(target=self._writer, name="gateway-stdout", daemon=True)
        self._thread.start()

    @property
    def done(self) -> bool:
        return self.max_events is not None and self.count >= self.max_events

    def offer(self, record: DispatchRecord) -> bool:
        if self.broken or self.done:
            return False
        if self.wanted is not None and record.name not in self.wanted:
            return True  # not printed, and a rerun would not print it either
        if self._pending > self.high:
            self._writable.clear()
            return False
        obj: dict[str, Any] = {"shard": record.shard_id, "t": record.name, "s": record.seq}
        if self.full:
            obj["d"] = orjson.loads(record.raw_d)
        line = orjson.dumps(obj) + b"\n"
        with self._cond:
            self._chunks.append((line, record.shard_id, record.session_id, record.seq))
            self._pending += len(line)
            self._cond.notify()
        self.count += 1
        if self.done:
            self.on_done()
        return True

    async def wait_writable(self) -> None:
        await self._writable.wait()

    def _writer(self) -> None:
        while True:
            with self._cond:
                while not self._chunks and not self._closing:
                    self._cond.wait()
                if not self._chunks:
                    return
                batch = list(self._chunks)
                self._chunks.clear()
            data = b"".join(c[0] for c in batch)
            try:
                view = memoryview(data)
                while view:
                    n = os.write(self.fd, view)
                    view = view[n:]
            except OSError:  # EPIPE (closed reader), EBADF...
                with self._cond:
                    self._note_unwritten(batch + list(self._chunks))
                    self._chunks.clear()
                self._loop.call_soon_threadsafe(self._broken)
                return
            with self._cond:
                self._pending -= len(data)
                drained = self._pending < self.low
            if drained:
                self._loop.call_soon_threadsafe(self._writable.set)

    def _note_unwritten(self, chunks: list) -> None:
        for _, shard_id, session_id, seq in chunks:
            self.unwritten.setdefault(shard_id, (session_id, seq))

    def _broken(self) -> None:
        if not self.broken:
            self.broken = True
            self._writable.set()  # nobody waits for a dead reader
            self.on_broken()

    async def close(self, timeout: float = 5.0) -> None:
        """Write what is buffered (at most ``timeout`` seconds), then stop the thread."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        deadline = time.monotonic() + timeout
        while self._thread.is_alive() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        with self._cond:  # a reader that never read them: they were not printed
            self._note_unwritten(list(self._chunks))
            self._chunks.clear()

    def correct_state_file(self, path: str) -> None:
        """Move each saved seq back before the first line that never reached stdout, so the
        next run prints it (the gateway replays from the saved seq)."""
        if not self.unwritten:
            return
        states = load_sessions(path)
        for shard_id, (session_id, seq) in self.unwritten.items():
            state = states.get(shard_id)
            if state is not None and state.session_id == session_id and state.seq is not None:
                state.seq = min(state.seq, seq - 1)
        save_sessions(path, [states[i] for i in sorted(states)])


# ---------------------------------------------------------------------------- run
async def _run(args: argparse.Namespace, checked: dict) -> int:
    loop = asyncio.get_running_loop()
    started = loop.time()
    stop = asyncio.Event()
    why: list[str] = []

    def request_stop(reason: str) -> None:
        if not why:
            why.append(reason)
        stop.set()

    for sig, name in ((signal.SIGINT, "SIGINT"), (signal.SIGTERM, "SIGTERM")):
        loop.add_signal_handler(sig, request_stop, name)
    out = StdoutSink(full=args.full, wanted=checked["wanted"], max_events=args.max_events,
                     on_broken=lambda: request_stop("stdout closed"),
                     on_done=lambda: request_stop("max-events reached"))
    compress = args.compress or default_compress()

    def on_wait(seconds: float) -> None:
        _err(f"[gateway] session_start_limit exhausted: waiting {seconds:.0f}s before the next "
             f"IDENTIFY")

    manager = ShardManager(checked["token"], intents=args.intents, api_url=args.api_url,
                           shard_count=checked["shard_count"], shard_ids=checked["shard_ids"],
                           state_file=args.state_file, compress=compress, sink=out,
                           identify_queue=MemoryIdentifyQueue(1, 5.0, on_wait=on_wait))

    def on_lifecycle(ev: LifecycleEvent) -> None:
        line = _lifecycle_line(ev)
        if line:
            _err(line)
    for name in ("connected", "ready", "resumed", "disconnected", "reconnecting",
                 "invalid_session", "zombie", "loop_blocked"):
        manager.on(name, on_lifecycle)

    async def connect_and_run() -> None:
        await manager.start()
        _err(f"[gateway] {len(manager.shards)} shard(s) of {manager.shard_count}, compress="
             f"{compress}, codec={mijcodec.IMPLEMENTATION}")
        await manager.run()

    timer = None
    if args.duration is not None:
        timer = loop.call_at(started + args.duration, request_stop, "duration reached")
    runner = asyncio.ensure_future(connect_and_run())
    stopper = asyncio.ensure_future(stop.wait())
    keep = args.state_file is not None
    try:
        await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if runner.done() and not stop.is_set():
            return _run_ended(runner, args)
        reason = why[0]
        saved = f", state saved to {args.state_file}" if keep else ""
        _err(f"[gateway] {reason} ({out.count} events); closing{saved}")
        await manager.close(keep_sessions=keep)
        try:
            await asyncio.wait_for(asyncio.shield(runner), 10)
        except BaseException:
            pass
        return {"SIGINT": EXIT_SIGINT, "SIGTERM": EXIT_SIGTERM,
                "stdout closed": EXIT_STDOUT_CLOSED}.get(reason, EXIT_OK)
    finally:
        if timer is not None:
            timer.cancel()
        stopper.cancel()
        if not runner.done():
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
        await manager.close(keep_sessions=keep)
        await out.close()
        if keep and not out.broken:  # a closed reader is gone: what it missed is not ours
            out.correct_state_file(args.state_file)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        if out.broken:  # nothing may try to flush into the closed pipe at exit
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.close(devnull)


def _run_ended(runner: asyncio.Future, args: argparse.Namespace) -> int:
    exc = runner.exception()
    if isinstance(exc, GatewayAuthError):
        _err(f"error: {exc}")
        return EXIT_AUTH
    if isinstance(exc, GatewayClosedFatal):
        meaning = FATAL_CLOSE_CODES.get(exc.code, "fatal")
        _err(f"fatal: shard {exc.shard_id} closed with code {exc.code} ({meaning}): "
             f"{exc.reason or '-'}")
        return EXIT_FATAL
    if exc is not None:
        _err(f"error: cannot reach {args.api_url}: {exc}")
        return EXIT_FATAL
    return EXIT_OK


# ---------------------------------------------------------------------------- demo
async def _demo(args: argparse.Namespace) -> int:
    from .testing import DeliveryVerifier, GatewaySimulator

    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    compress = args.compress or default_compress()
    interval = 0.25
    sim = GatewaySimulator(heartbeat_interval=interval, shards=args.shards,
                           max_concurrency=min(2, args.shards), seed=seed)
    sim.replay_overlap = 3  # replays overlap what was delivered: de-duplication by seq shows
    sim.trim_acknowledged = True  # memory bounded by what the shards have not acknowledged
    await sim.start()
    verifier = DeliveryVerifier()

    lifecycle_log: collections.deque[str] = collections.deque(maxlen=200)

    def on_lifecycle(ev: LifecycleEvent) -> None:
        line = _lifecycle_line(ev)
        if line:
            lifecycle_log.append(line)

    manager = ShardManager(sim.token, intents=DEFAULT_INTENTS, api_url=sim.api_url,
                           compress=compress, identify_period=0.5,
                           invalid_session_delay=lambda: 0.2 + 0.3 * rng.random(),
                           stable_after=1.0, min_connect_interval=0.0)
    manager.on("*", verifier.add)
    for name in ("ready", "resumed", "disconnected", "reconnecting", "invalid_session", "zombie"):
        manager.on(name, on_lifecycle)
    status_stop = asyncio.Event()
    faults: list[str] = []
    tty = sys.stderr.isatty()

    window: collections.deque[tuple[float, int]] = collections.deque()  # 1 s moving rate

    def status() -> str:
        ms = manager.metrics().values()
        total = verifier.delivered
        lat = [m.latency for m in ms if m.latency is not None]
        lat_s = f"{1000 * sum(lat) / len(lat):.1f} ms" if lat else "-"
        now = time.monotonic()
        window.append((now, total))
        while len(window) > 2 and now - window[0][0] > 1.0:
            window.popleft()
        dt = now - window[0][0]
        rate = (total - window[0][1]) / dt if dt > 0 else 0.0
        return (f"events {total:>7} | {rate:7.0f} ev/s | latency {lat_s:>8} | "
                f"reconnects {sum(m.reconnects for m in ms):>2} | resumes {sum(m.resumes for m in ms):>2}"
                f" | faults {len(faults):>2} | {compress} | codec {mijcodec.IMPLEMENTATION}")

    async def status_loop() -> None:
        # a terminal gets one line refreshed with \r; a file or pipe plain lines, once a second
        period = 0.1 if tty else 1.0
        while not status_stop.is_set():
            if tty:
                sys.stderr.write("\r" + status() + "\x1b[K")
            else:
                sys.stderr.write(status() + "\n")
            sys.stderr.flush()
            try:
                await asyncio.wait_for(status_stop.wait(), period)
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

        def caught_up() -> bool:  # every shard has seen the last event of its session
            for shard in manager.shards.values():
                s = sim.sessions.get(shard.session_id or "")
                if s is None or shard.seq != s.seq or not shard._established.is_set():
                    return False
            return True
        try:
            await sim.wait_for(caught_up, 10, "catch-up")
        except TimeoutError:
            pass
        await asyncio.sleep(0.1)
    finally:
        status_stop.set()
        if status_task is not None:
            await status_task
            sys.stderr.write(("\r" if tty else "") + status() + "\n")
        metrics = manager.metrics()
        await manager.close(keep_sessions=False)
        await sim.stop()

    # ---- verification: per shard, split at READY; each segment must equal its session log
    sim_total, problems = verifier.verify(sim)
    checked_sessions = verifier.sessions
    total = verifier.delivered
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
