"""What both implementations share: opcodes, constants, ``encode`` and the
slow-path envelope checks.

Keeping these in one pure-Python module means the compiled and the fallback
codec cannot drift on them: the exception classes, the opcode table, the rules
for a valid envelope and the encoder exist exactly once.
"""

from __future__ import annotations

import enum
import re
import sys
from typing import Any, Optional

import orjson

from ._errors import DecodeError, DecompressError, EncodeError, PayloadTooLarge

__all__ = [
    "Opcode",
    "encode",
    "ZLIB_SUFFIX",
    "DEFAULT_MAX_PAYLOAD_SIZE",
    "MAX_SEND_SIZE",
    "RECEIVE_ONLY",
    "NEVER_SEND",
]

#: Every zlib-stream payload ends with a ``Z_SYNC_FLUSH``: these four bytes.
ZLIB_SUFFIX = b"\x00\x00\xff\xff"

#: Default cap on one decompressed payload. Real GUILD_CREATEs of huge guilds
#: reach tens of MB; 64 MiB leaves room for them while a decompression bomb
#: costs at most this much memory.
DEFAULT_MAX_PAYLOAD_SIZE = 64 * 1024 * 1024

#: The gateway closes the connection (4002) on a sent payload over this size.
MAX_SEND_SIZE = 4096

#: The largest max_payload_size a Decoder keeps: larger values are clamped to
#: it (and read back clamped), in both implementations. A quarter of the
#: address space (2**62 - 1 on 64-bit builds, 2**30 - 1 on 32-bit ones), so
#: the compiled codec's size arithmetic (limit + 1, buffer doubling) never
#: overflows; no payload of that size can be held anyway.
MAX_PAYLOAD_LIMIT = sys.maxsize >> 1


# -- the inflater -------------------------------------------------------------

#: The inflaters a Decoder can be asked for: the system zlib and zlib-ng.
INFLATER_NAMES = ("zlib", "zlib-ng")


def zlib_ng_module() -> Any:
    """The zlib-ng package's ``zlib_ng.zlib_ng`` (what the fallback inflates
    zlib-ng with), or None when it is not installed."""
    try:
        from zlib_ng import zlib_ng
    except ImportError:
        return None
    return zlib_ng


def _compiled_zlib_ng() -> Optional[str]:
    """The zlib-ng release this install's compiled codec links ("" for none;
    None: no compiled codec)."""
    import importlib

    try:  # by name: a static import here would be a cycle for type checkers
        _codec = importlib.import_module(__name__.rsplit(".", 1)[0] + "._codec")
    except Exception:  # no build, or a broken one: the fallback decides alone
        return None
    return str(_codec.INFLATERS.get("zlib-ng", ""))


def install_inflater(compiled_zlib_ng: Optional[str] = None, *, from_fallback: bool = False) -> str:
    """The inflater both implementations of this install use by default.

    "zlib-ng" when the fallback can inflate with it (the zlib-ng package is
    installed) and the compiled codec, if there is one, links that very
    zlib-ng release (``compiled_zlib_ng``: the version it links, "" for none,
    None for no compiled codec); otherwise "zlib" (the system zlib, which
    CPython's zlib module and the compiled codec share). One rule for both,
    so that the two implementations of one install inflate with the same
    library release and so agree on corrupt input (as zstd_decompressor does
    for libzstd). The compiled codec passes what it links; the fallback asks
    for it (``from_fallback``), importing the compiled codec if it is there.
    """
    package = zlib_ng_module()
    if package is None:
        return "zlib"
    if from_fallback:
        compiled_zlib_ng = _compiled_zlib_ng()
    if compiled_zlib_ng is None:
        return "zlib-ng"
    return "zlib-ng" if compiled_zlib_ng == package.ZLIBNG_RUNTIME_VERSION else "zlib"


def zstd_decompressor(zstd: Any, linked_version_number: int = 0) -> Optional[str]:
    """What decodes zstd-stream in an implementation: "libzstd" (the compiled
    codec's own, linked at build time) when ``linked_version_number`` (its
    ``ZSTD_versionNumber()``, 0 for none) is the libzstd release that ``zstd``
    (backports.zstd / compression.zstd, the fallback's decompressor) runs:
    two releases of libzstd need not agree on which corrupt frames they
    detect, and the two implementations must. Otherwise that module's
    decompressor object, by its module name; None without zstd support."""
    if zstd is None:
        return None
    major, minor, patch = tuple(zstd.zstd_version_info)[:3]
    if linked_version_number and linked_version_number == major * 10000 + minor * 100 + patch:
        return "libzstd"
    return str(zstd.__name__)


def check_inflater(inflater: Any, available: Any, default: str) -> str:
    """Decoder's ``inflater`` argument: None (this install's default) or the
    name of one of ``available``. ValueError otherwise."""
    if inflater is None:
        return default
    if inflater not in INFLATER_NAMES:
        raise ValueError(f"inflater must be None, 'zlib' or 'zlib-ng', not {inflater!r}")
    if inflater not in available:
        raise ValueError(f"inflater {inflater!r} is not available to this implementation (it has {', '.join(available)})")
    return inflater


def payload_limit(max_payload_size: Any) -> int:
    """Decoder's one rule for max_payload_size: an int (not a bool) >= 1,
    clamped to MAX_PAYLOAD_LIMIT. ValueError otherwise."""
    if type(max_payload_size) is not int or max_payload_size < 1:
        raise ValueError(f"max_payload_size must be a positive int, not {max_payload_size!r}")
    return min(max_payload_size, MAX_PAYLOAD_LIMIT)


#: What feed(), feed_raw() and reset() raise on a Decoder whose __init__ never
#: ran (made with Decoder.__new__), and __init__ on one that is set up already.
NOT_INITIALISED = "this Decoder was never initialised (Decoder.__new__ without __init__)"
INITIALISED_TWICE = (
    "Decoder.__init__() called on a decoder that is set up already: a Decoder is "
    "initialised once (reset() starts a new connection; other settings need a new Decoder)"
)
#: The poison a MemoryError in the middle of a payload leaves: the stream is lost.
OUT_OF_MEMORY = "stream lost: out of memory in the middle of a payload"


class Opcode(enum.IntEnum):
    """Gateway opcodes, under the names of the seed description
    (``shared/seed/opcodes.txt``), with the direction each travels in.

    Unknown opcodes are not rejected anywhere: a decoded packet carries them as
    plain ``int``.
    """

    #: Received: an event (MESSAGE_CREATE, PRESENCE_UPDATE, ...) with ``t`` and
    #: ``s``. The vast majority of received packets.
    DISPATCH = 0
    #: Both: the client sends one every ``heartbeat_interval`` with the last
    #: sequence number; the server may send one to ask for a heartbeat at once.
    HEARTBEAT = 1
    #: Sent: starts a new session (token, intents, properties, shard, ...).
    IDENTIFY = 2
    #: Sent: changes the bot's status and activity. Never required.
    PRESENCE = 3
    #: Sent: joins, leaves or mutes/deafens in voice. Never required.
    VOICE_STATE = 4
    #: Sent, undocumented: pings a voice server. Bots must never send it.
    VOICE_PING = 5
    #: Sent: resumes an existing session, replaying events after ``seq``.
    RESUME = 6
    #: Received: reconnect (and, on today's gateway, RESUME) because the server
    #: is going away. May arrive before HELLO.
    RECONNECT = 7
    #: Sent: asks for a guild's members, answered by GUILD_MEMBERS_CHUNK
    #: dispatches. Never required.
    REQUEST_MEMBERS = 8
    #: Received: the session is invalid; ``d`` true means it may be resumed,
    #: false means identify anew.
    INVALIDATE_SESSION = 9
    #: Received: first packet of every connection, with ``heartbeat_interval``.
    HELLO = 10
    #: Received: answers a heartbeat; its absence reveals a zombie connection.
    HEARTBEAT_ACK = 11
    #: Sent, undocumented legacy: asks for a guild's full state. Bots must not
    #: send it.
    GUILD_SYNC = 12
    #: Sent (current gateway): asks for guilds' soundboard sounds.
    REQUEST_SOUNDBOARD_SOUNDS = 31
    #: Sent (current gateway): asks for ephemeral channel information.
    REQUEST_CHANNEL_INFO = 43


#: Opcodes only the server sends.
RECEIVE_ONLY = frozenset(
    {
        Opcode.DISPATCH,
        Opcode.RECONNECT,
        Opcode.INVALIDATE_SESSION,
        Opcode.HELLO,
        Opcode.HEARTBEAT_ACK,
    }
)
#: Opcodes a bot must never send (the seed: VOICE_PING, GUILD_SYNC).
NEVER_SEND = frozenset({Opcode.VOICE_PING, Opcode.GUILD_SYNC})

#: op value -> Opcode member, for the decoders' lookups.
OPCODES = {int(member): member for member in Opcode}

_dumps = orjson.dumps
_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError


def encode(op: int, d: Any = None, *, force: bool = False) -> bytes:
    """Serialise a payload to send: compact JSON ``{"op":op,"d":d}``.

    Raises :class:`EncodeError` for an opcode a client must not send (the
    receive-only ones, VOICE_PING and GUILD_SYNC) or a ``d`` orjson cannot
    serialise, and :class:`PayloadTooLarge` for more than 4096 bytes (the
    gateway would close the connection with 4002). ``force=True`` skips the
    opcode and size checks, for tests and for servers with other rules.
    """
    if not isinstance(op, int) or isinstance(op, bool):
        raise EncodeError(f"op must be an int, not {type(op).__name__}")
    if not force:
        if op in RECEIVE_ONLY:
            raise EncodeError(f"opcode {op} ({Opcode(op).name}) is receive-only: a client never sends it")
        if op in NEVER_SEND:
            raise EncodeError(f"opcode {op} ({Opcode(op).name}) must never be sent by a bot")
    try:
        data = _dumps({"op": int(op), "d": d})
    except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
        raise EncodeError(f"d cannot be serialised to JSON: {exc}") from None
    if not force and len(data) > MAX_SEND_SIZE:
        raise PayloadTooLarge(
            f"encoded payload is {len(data)} bytes; the gateway accepts at most {MAX_SEND_SIZE}"
        )
    return data


def parse_envelope(raw: bytes) -> tuple[Any, Any, Any, Any]:
    """Slow path: fully parse ``raw`` and check the envelope.

    Returns ``(op, s, t, d)`` with ``op`` mapped to :class:`Opcode` when known.
    Used by both implementations for payloads not in Discord's canonical shape.
    """
    try:
        obj = _loads(raw)
    except _JSONDecodeError as exc:
        raise not_json_error(raw, exc) from None
    return check_envelope(obj)


def not_json_error(raw: Any, exc: Exception) -> DecodeError:
    """The DecodeError for a payload orjson refused. orjson reports bytes that
    are not UTF-8 as "str is not valid UTF-8: surrogates not allowed" whatever
    was wrong; say what it was and where (only on this error path)."""
    try:
        bytes(raw).decode("utf-8")
    except UnicodeDecodeError as bad:
        return DecodeError(
            f"payload is not valid JSON: it is not valid UTF-8 at byte {bad.start} "
            f"({bad.reason}: {bytes(raw)[bad.start:bad.end].hex(' ')})"
        )
    return DecodeError(f"payload is not valid JSON: {exc}")


def str_not_utf8_error(exc: UnicodeEncodeError) -> DecodeError:
    """The DecodeError for a str payload with a lone surrogate (not encodable as UTF-8)."""
    return DecodeError(
        f"payload is not valid UTF-8: the str has a lone surrogate U+{ord(exc.object[exc.start]):04X} "
        f"at index {exc.start}"
    )


# -- locating d's JSON text (Packet.raw_d) --------------------------------------
#
# raw_d is the JSON text of d exactly as it is in the payload. These walk JSON
# structure only (strings, nesting, scalar tokens); they build no objects.
# ``json_value_end`` is exact on valid JSON; on invalid JSON it returns -1 or an
# end that the callers only accept when the structure around it checks out.

_STRING_REST = re.compile(rb'(?:[^"\\]|\\.)*"', re.S).match  # after the opening quote
_STRUCTURAL = re.compile(rb'["{}\[\]]').search
_SCALAR = re.compile(rb'[^\s,:\[\]{}"]+').match
_SPACE_RE = re.compile(rb"[ \t\n\r]*")


def _skip_space(raw: bytes, pos: int) -> int:
    m = _SPACE_RE.match(raw, pos)
    return pos if m is None else m.end()


def json_value_end(raw: bytes, pos: int) -> int:
    """The index just after the JSON value starting at ``raw[pos]`` (no
    leading whitespace), or -1 when there is no complete value there."""
    n = len(raw)
    if pos >= n:
        return -1
    c = raw[pos]
    if c == 0x22:  # "
        m = _STRING_REST(raw, pos + 1)
        return -1 if m is None else m.end()
    if c == 0x7B or c == 0x5B:  # { [
        depth = 0
        while True:
            m = _STRUCTURAL(raw, pos)
            if m is None:
                return -1
            i = m.start()
            c = raw[i]
            if c == 0x22:
                m = _STRING_REST(raw, i + 1)
                if m is None:
                    return -1
                pos = m.end()
                continue
            depth += 1 if c == 0x7B or c == 0x5B else -1
            pos = i + 1
            if depth == 0:
                return pos
    m = _SCALAR(raw, pos)
    return -1 if m is None else m.end()


def canonical_d_end(raw: bytes, start: int) -> int:
    """For a canonical payload whose d starts at ``start``: the end of d's
    text if d is the last key (only whitespace between it and the final
    brace), else -1 (keys follow d, or the structure is broken)."""
    end = json_value_end(raw, start)
    if end < 0:
        return -1
    after = _skip_space(raw, end)
    return end if after == len(raw) - 1 else -1


def locate_d(raw: bytes) -> Optional[tuple[int, int]]:
    """``(start, end)`` of the text of the top-level key ``d`` (its last
    occurrence, as the parser keeps the last of repeated keys), or None when
    there is none. ``raw`` must be a payload the full parse accepted."""
    pos = _skip_space(raw, 0)
    if pos >= len(raw) or raw[pos] != 0x7B:
        return None
    pos = _skip_space(raw, pos + 1)
    found = None
    while pos < len(raw) and raw[pos] == 0x22:
        key_end = json_value_end(raw, pos)
        if key_end < 0:
            return None
        key = raw[pos:key_end]
        is_d = key == b'"d"' or (b"\\" in key and _loads(key) == "d")
        pos = _skip_space(raw, key_end)
        if pos >= len(raw) or raw[pos] != 0x3A:  # :
            return None
        start = _skip_space(raw, pos + 1)
        end = json_value_end(raw, start)
        if end < 0:
            return None
        if is_d:
            found = (start, end)
        pos = _skip_space(raw, end)
        if pos < len(raw) and raw[pos] == 0x2C:  # ,
            pos = _skip_space(raw, pos + 1)
        else:
            break
    return found


def raw_d_of_parsed(raw: bytes) -> bytes:
    """raw_d of a payload the full parse accepted: d's text, b"null" without d."""
    where = locate_d(raw)
    if where is None:
        return b"null"
    return raw[where[0] : where[1]]


def raw_d_canonical(raw: bytes, start: int, op: Any, s: Any, t: Any) -> bytes:
    """raw_d of a canonical payload whose lazy d starts at ``start``, for the
    rare payloads the compiled scanner or ``canonical_d_end`` could not settle
    (keys after d, or broken JSON): the full parse decides, as for ``d``."""
    end = canonical_d_end(raw, start)
    if end >= 0:
        return raw[start:end]
    reparse_d(raw, op, s, t)  # DecodeError for broken or ambiguous payloads
    return raw_d_of_parsed(raw)


def check_envelope(obj: Any) -> tuple[Any, Any, Any, Any]:
    if type(obj) is not dict:
        raise DecodeError(f"payload is not a JSON object but {_json_type(obj)}")
    try:
        op = obj["op"]
    except KeyError:
        raise DecodeError('payload has no "op"') from None
    if type(op) is not int:
        raise DecodeError(f'"op" must be an integer, not {_json_type(op)}')
    s = obj.get("s")
    if s is not None and type(s) is not int:
        raise DecodeError(f'"s" must be an integer or null, not {_json_type(s)}')
    t = obj.get("t")
    if t is not None and type(t) is not str:
        raise DecodeError(f'"t" must be a string or null, not {_json_type(t)}')
    return OPCODES.get(op, op), s, t, obj.get("d")


def reparse_d(raw: bytes, op: Any, s: Any, t: Any) -> Any:
    """Lazy ``d`` whose slice did not parse on its own: parse the whole payload.

    The fast path read ``t``/``s``/``op`` from the canonical prefix and took
    everything between ``"d":`` and the final ``}`` as ``d``. If that slice is
    not one JSON value, either the payload is not JSON at all (DecodeError) or
    keys follow ``d``; then the full parse decides, and if it disagrees with
    the envelope already reported (a repeated ``t``/``s``/``op``) that is a
    DecodeError too, never a silently different result.
    """
    full = parse_envelope(raw)
    if full[0] != op or full[1] != s or full[2] != t:
        raise DecodeError('payload repeats "t", "s" or "op" after "d"; its envelope is ambiguous')
    return full[3]


def add_handler(op_handlers: dict, t_handlers: dict, key: Any, handler: Any) -> Any:
    """``Decoder.on()`` for both implementations: handlers live in two dicts
    (opcode -> tuple, event name -> tuple) that the decoders read in feed()."""
    table = _handler_table(op_handlers, t_handlers, key)
    if handler is None:

        def decorator(fn: Any) -> Any:
            add_handler(op_handlers, t_handlers, key, fn)
            return fn

        return decorator
    if not callable(handler):
        raise TypeError("handler must be callable")
    table[key] = table.get(key, ()) + (handler,)
    return handler


def remove_handler(op_handlers: dict, t_handlers: dict, key: Any, handler: Any) -> None:
    """``Decoder.off()`` for both implementations."""
    table = _handler_table(op_handlers, t_handlers, key)
    if handler is None:
        table.pop(key, None)
        return
    handlers = list(table.get(key, ()))
    if handler not in handlers:
        raise ValueError(f"{handler!r} is not registered for {key!r}")
    handlers.remove(handler)
    if handlers:
        table[key] = tuple(handlers)
    else:
        del table[key]


def _handler_table(op_handlers: dict, t_handlers: dict, key: Any) -> dict:
    if isinstance(key, str):
        return t_handlers
    if isinstance(key, int) and not isinstance(key, bool):
        return op_handlers
    raise TypeError(f"handler key must be an opcode (int) or an event name (str), not {type(key).__name__}")


def zstd_after_frame_end(zstd: Any, rest: Any, remaining: int, max_size: int) -> tuple[Optional[bytes], Any]:
    """The bytes of a zstd-stream message after a frame ended inside it.

    Spacebar closes one frame per payload; libzstd's decompressor object stops
    at a frame's end, so what follows goes to fresh ones, frame after frame.
    Shared by both implementations (which also share the libzstd, that of
    backports.zstd / compression.zstd: two builds of different versions
    disagree on which corrupt frames they detect). ``remaining`` is what the
    payload may still grow by, ``max_size`` the limit to name in the error.
    Returns the further output (None for none) and the decompressor to keep.
    Raises DecompressError / PayloadTooLarge; the caller poisons itself.
    """
    decompressor = zstd.ZstdDecompressor()
    parts = []
    while rest:
        try:
            chunk = decompressor.decompress(rest, remaining + 1)
        except zstd.ZstdError as exc:
            raise DecompressError(f"corrupt zstd-stream: {exc}") from None
        if len(chunk) > remaining:
            raise PayloadTooLarge(f"payload exceeds max_payload_size={max_size} bytes")
        remaining -= len(chunk)
        if chunk:
            parts.append(chunk)
        if not decompressor.eof:
            break
        rest = decompressor.unused_data
        decompressor = zstd.ZstdDecompressor()
    return (b"".join(parts) if parts else None), decompressor


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if type(value) is bool:
        return "a boolean"
    if type(value) is int or type(value) is float:
        return "a number"
    if type(value) is str:
        return "a string"
    if type(value) is list:
        return "an array"
    return "an object"
