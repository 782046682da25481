"""Pure-Python implementation of the mijcodec codec.

It behaves exactly like the compiled ``mijcodec._codec`` (same results, same
exceptions; the test suite runs every case on both and compares them with
Hypothesis), using only the standard library's ``zlib`` (or the zlib-ng
package's ``zlib_ng.zlib_ng``, see ``ZLIB_INFLATER``), ``backports.zstd`` /
``compression.zstd`` and orjson. It is what runs where the extension is not
built, and it is the readable reference for what the compiled code does.
"""

from __future__ import annotations

import re
import zlib
from operator import attrgetter as _attrgetter
from typing import Any, Callable, Optional, Union

import orjson

from ._common import (
    DEFAULT_MAX_PAYLOAD_SIZE,
    INITIALISED_TWICE,
    MAX_SEND_SIZE,
    NOT_INITIALISED,
    OPCODES,
    OUT_OF_MEMORY,
    ZLIB_SUFFIX,
    Opcode,
    check_inflater,
    install_inflater,
    zlib_ng_module,
    add_handler,
    encode,
    parse_envelope,
    payload_limit,
    raw_d_canonical,
    raw_d_of_parsed,
    remove_handler,
    reparse_d,
    str_not_utf8_error,
    zstd_after_frame_end,
    zstd_decompressor,
)
from ._errors import CodecError, DecodeError, DecompressError, EncodeError, PayloadTooLarge

try:  # Python 3.14+
    from compression import zstd as _zstd  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the Python version
    try:
        from backports import zstd as _zstd  # type: ignore[import-not-found,no-redef]
    except ImportError:
        _zstd = None  # type: ignore[assignment]

__all__ = [
    "Opcode",
    "Decoder",
    "Packet",
    "encode",
    "CodecError",
    "DecompressError",
    "DecodeError",
    "PayloadTooLarge",
    "EncodeError",
    "ZLIB_SUFFIX",
    "DEFAULT_MAX_PAYLOAD_SIZE",
    "MAX_SEND_SIZE",
    "ZLIB_VERSION",
    "ZLIB_INFLATER",
    "INFLATERS",
    "ZSTD_VERSION",
    "ZSTD_DECOMPRESSOR",
]

_zlib_ng = zlib_ng_module()
#: The zlib libraries this implementation inflates with: name -> version
#: ("zlib": CPython's zlib module, i.e. the system zlib; "zlib-ng": the
#: zlib-ng package, when installed).
INFLATERS: dict[str, str] = {"zlib": zlib.ZLIB_RUNTIME_VERSION}
_ZLIB_MODULES: dict[str, Any] = {"zlib": zlib}
if _zlib_ng is not None:
    INFLATERS["zlib-ng"] = _zlib_ng.ZLIBNG_RUNTIME_VERSION
    _ZLIB_MODULES["zlib-ng"] = _zlib_ng
#: The inflater a Decoder uses unless told otherwise, the same as the
#: compiled codec's of this install (see _common.install_inflater).
ZLIB_INFLATER: str = install_inflater(from_fallback=True)
#: Version of the zlib library doing the inflating (of ZLIB_INFLATER).
ZLIB_VERSION: str = INFLATERS[ZLIB_INFLATER]
#: Version of the zstd library doing zstd-stream, or None when unavailable.
ZSTD_VERSION: Optional[str] = _zstd.zstd_version if _zstd is not None else None
#: What decodes zstd-stream: here always the decompressor object of
#: "backports.zstd" / "compression.zstd" (None when unavailable). The compiled
#: codec says "libzstd" when it decodes with its own link of that release.
ZSTD_DECOMPRESSOR: Optional[str] = zstd_decompressor(_zstd)

_loads = orjson.loads
_from_bytes = int.from_bytes
_JSONDecodeError = orjson.JSONDecodeError

# Discord's canonical envelope prefix: {"t":<null|"NAME">,"s":<null|int>,"op":<int>,"d":
# Only plain printable ASCII event names and non-negative integers of at most
# 18 digits (no leading zeros) qualify; anything else takes the full parse.
# mijcodec/_codec.pyx implements exactly these rules by hand.
_CANONICAL = re.compile(
    rb'\{"t":(?:null|"([\x20\x21\x23-\x5b\x5d-\x7e]*)"),'
    rb'"s":(?:null|(0|[1-9][0-9]{0,17})),'
    rb'"op":(0|[1-9][0-9]{0,17}),'
    rb'"d":'
).match

_ZSTD_MAGIC = 0xFD2FB528
# the poison of a Decoder whose __init__ has not run
_NOT_INITIALISED = RuntimeError(NOT_INITIALISED)
_NOT_MADE_BY_A_DECODER = "this Packet was not made by Decoder.feed() and has no payload"

Handler = Callable[["Packet"], Any]
_new_packet = object.__new__


class Packet:
    """One decoded gateway payload.

    ``op``, ``s`` and ``t`` are read when the packet is made; ``d`` is parsed
    from JSON on first access and cached, so a packet nobody reads costs no
    JSON object building. ``raw`` is the whole decompressed payload (bytes).
    Absent ``t``, ``s`` or ``d`` keys read as None.
    """

    # _d_start: where d's JSON starts in raw while d is not parsed yet, minus
    # that once it is; 0 for a payload parsed in full when the packet was made.
    __slots__ = ("_op", "_s", "_t", "_raw", "_d", "_d_start")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("Packet cannot be created directly: Decoder.feed() makes packets")

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError("cannot pickle 'Packet' object")

    def __new__(cls, *args: Any, **kwargs: Any) -> "Packet":
        # What Packet.__new__ alone makes reads like the compiled one's (its
        # __cinit__ state): None fields; d and raw_d refused (no _d_start).
        # Decoders make packets with object.__new__ and set every slot.
        self = _new_packet(cls)
        self._op = self._s = self._t = self._raw = None  # type: ignore[assignment]
        return self

    _op: Any
    _s: Optional[int]
    _t: Optional[str]
    _raw: bytes
    _d: Any
    _d_start: int

    # Read-only like the compiled one's, through C getters: a property whose
    # fget is a Python function costs a frame per read, about twice as much.
    op = property(_attrgetter("_op"), doc="The opcode: an Opcode member, or the int of an unknown one.")
    s = property(_attrgetter("_s"), doc="The dispatch sequence number, or None.")
    t = property(_attrgetter("_t"), doc="The dispatch event name, or None.")
    raw = property(_attrgetter("_raw"), doc="The whole decompressed payload (bytes).")

    @property
    def d(self) -> Any:
        try:
            start = self._d_start
        except AttributeError:
            raise TypeError(_NOT_MADE_BY_A_DECODER) from None
        if start <= 0:
            return self._d
        raw = self._raw
        try:
            d = _loads(memoryview(raw)[start:-1])
        except _JSONDecodeError:
            d = reparse_d(raw, self._op, self._s, self._t)
        self._d = d
        self._d_start = -start
        return d

    @property
    def raw_d(self) -> bytes:
        """The JSON text of ``d`` exactly as it is in the payload (bytes), not
        parsed; ``b"null"`` when the payload has no ``d``. See the README."""
        try:
            start = abs(self._d_start)
        except AttributeError:
            raise TypeError(_NOT_MADE_BY_A_DECODER) from None
        if not start:  # fully parsed when made: a valid payload
            return raw_d_of_parsed(self._raw)
        return raw_d_canonical(self._raw, start, self._op, self._s, self._t)

    def __repr__(self) -> str:
        return f"Packet(op={self.op!r}, s={self.s!r}, t={self.t!r})"


def _make_packet(raw: bytes) -> Packet:
    """Read the envelope of one payload: the canonical fast path or a full parse."""
    pkt = _new_packet(Packet)
    pkt._raw = raw
    if raw == _ACK:  # the HEARTBEAT_ACK, byte for byte as Discord sends it (most payloads of a quiet shard)
        pkt._op = _HEARTBEAT_ACK
        pkt._s = pkt._t = pkt._d = None
        pkt._d_start = _ACK_D_PARSED
        return pkt
    m = _CANONICAL(raw)
    if m is not None:
        end = m.end()
        if raw[-1] == 0x7D and end < len(raw) - 1:
            tb, sb, opb = m.groups()
            op = _OP_BY_DIGITS_GET(opb)
            pkt._op = int(opb) if op is None else op
            pkt._s = None if sb is None else int(sb)
            if tb is None:
                pkt._t = None
            else:
                t = _EVENT_NAMES_GET(tb)
                if t is None:
                    t = tb.decode("ascii")
                    if len(_EVENT_NAMES) < 1024:  # bounded: names come from the network
                        _EVENT_NAMES[tb] = t
                pkt._t = t
            if end == len(raw) - 5 and raw.endswith(b"null}"):  # d is null: known without parsing
                pkt._d = None
                pkt._d_start = -end
            else:
                pkt._d_start = end
            return pkt
    pkt._op, pkt._s, pkt._t, pkt._d = parse_envelope(raw)
    pkt._d_start = 0
    return pkt


_ACK = b'{"t":null,"s":null,"op":11,"d":null}'
_HEARTBEAT_ACK = OPCODES[11]
_ACK_D_PARSED = -(len(_ACK) - 5)  # d starts at len - 5 ("null}") and is parsed
_OP_BY_DIGITS_GET = {str(op).encode(): member for op, member in OPCODES.items()}.get
_EVENT_NAMES: dict[bytes, str] = {}
_EVENT_NAMES_GET = _EVENT_NAMES.get


def _as_buffer(data: Any) -> Any:
    """bytes as they are; any other C-contiguous buffer as a flat byte view."""
    try:
        view = memoryview(data)
    except TypeError:
        raise TypeError(f"feed() expects a bytes-like object, not {type(data).__name__}") from None
    if not view.c_contiguous:
        raise TypeError("feed() expects a C-contiguous bytes-like object")
    if view.format != "B" or view.ndim != 1:
        # unsigned bytes, whatever the exporter's item type ('b', 'c', 'h', ...):
        # what the compiled codec reads through its Py_buffer
        try:
            view = view.cast("B")
        except (TypeError, ValueError):  # a format memoryview cannot cast: copy the bytes
            view = memoryview(view.tobytes())
    return view


class Decoder:
    """Decodes the messages of one gateway connection.

    ``compress`` is ``"zlib-stream"``, ``"zstd-stream"`` or ``None``/``"none"``
    (plain JSON frames). Feed it every websocket message in order; it returns a
    :class:`Packet` for each complete payload (None while a zlib-stream payload
    is incomplete) and calls the handlers registered with :meth:`on`.
    """

    # What a Decoder made by Decoder.__new__ alone has (the compiled one's
    # __cinit__ state): feed(), feed_raw() and reset() refuse it.
    _initialised = False
    _busy = False
    _poison: Any = _NOT_INITIALISED
    _compress: Optional[str] = None
    _inflater: Optional[str] = None
    _zmod: Any = zlib
    _max = DEFAULT_MAX_PAYLOAD_SIZE
    _max_plus_one = DEFAULT_MAX_PAYLOAD_SIZE + 1
    _seq: Optional[int] = None
    _payloads = 0
    _bytes_in = 0
    _bytes_out = 0

    def __init__(
        self, compress: Optional[str] = "zlib-stream", *, max_payload_size: int = DEFAULT_MAX_PAYLOAD_SIZE, inflater: Optional[str] = None
    ) -> None:
        # Once only, every argument checked before any state changes (see _codec.pyx).
        if self._initialised:
            raise TypeError(INITIALISED_TWICE)
        if compress == "none":
            compress = None
        if compress == "zlib-stream" or compress == "zstd-stream" or compress is None:
            pass
        else:
            raise ValueError(f"compress must be 'zlib-stream', 'zstd-stream' or None, not {compress!r}")
        if compress == "zstd-stream" and _zstd is None:
            raise ValueError("zstd-stream needs backports.zstd (Python < 3.14) or compression.zstd")
        limit = payload_limit(max_payload_size)
        inflater = check_inflater(inflater, INFLATERS, ZLIB_INFLATER)
        self._inflater = inflater
        self._zmod = _ZLIB_MODULES[inflater]
        self._compress = compress
        # the function that takes one message of this mode (no mode test per message)
        self._feed_one = _FEEDERS[compress]
        self._max = limit
        self._max_plus_one = limit + 1
        self._seq: Optional[int] = None
        self._payloads = 0
        self._bytes_in = 0
        self._bytes_out = 0
        self._op_handlers: dict[int, tuple[Handler, ...]] = {}
        self._t_handlers: dict[str, tuple[Handler, ...]] = {}
        self._busy = False
        self._new_context()
        self._initialised = True

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError("cannot pickle 'Decoder' object: it holds one connection's stream state")

    # -- state ----------------------------------------------------------------

    def _new_context(self) -> None:
        self._poison: Optional[CodecError] = None
        self._buf = bytearray()
        self._tail = b""
        self._header = b""
        self._need_header = True
        self._z: Any = None
        self._zs: Any = None
        self._zs_in_frame = False
        self._zs_checksum = False
        if self._compress == "zlib-stream":
            self._z = self._zmod.decompressobj(-15)  # raw inflate: no adler32 work
        elif self._compress == "zstd-stream":
            self._zs = _zstd.ZstdDecompressor()

    def reset(self) -> None:
        """A fresh decompression context and empty buffers, for a new connection.

        Clears a poisoned state. ``seq``, the counters and the handlers stay.
        """
        if self._busy:
            raise RuntimeError("Decoder.reset() called while feed() is running")
        if not self._initialised:
            raise RuntimeError(NOT_INITIALISED)
        self._new_context()

    @property
    def inflater(self) -> Optional[str]:
        """The zlib library a zlib-stream decoder inflates with ("zlib" or "zlib-ng")."""
        return self._inflater

    @property
    def compress(self) -> Optional[str]:
        return self._compress

    @property
    def max_payload_size(self) -> int:
        return self._max

    @property
    def seq(self) -> Optional[int]:
        """The last dispatch sequence number seen, None before any."""
        return self._seq

    @property
    def poisoned(self) -> bool:
        return self._poison is not None and self._poison is not _NOT_INITIALISED

    @property
    def buffer_size(self) -> int:
        """Bytes allocated for the decoder's output buffer: this implementation
        only buffers a zlib-stream payload spread over several messages (0
        between payloads). Implementation-specific."""
        if not self._initialised:
            return 0
        return self._buf.__alloc__()

    @property
    def payloads(self) -> int:
        """Complete payloads decoded (feed(): packets made; feed_raw(): payloads returned)."""
        return self._payloads

    @property
    def bytes_in(self) -> int:
        """Bytes of messages fed (compressed, on the wire)."""
        return self._bytes_in

    @property
    def bytes_out(self) -> int:
        """Bytes of payloads decompressed."""
        return self._bytes_out

    # -- handlers -------------------------------------------------------------

    def on(self, key: Union[int, str], handler: Optional[Handler] = None) -> Any:
        """Call ``handler(packet)`` for every packet with opcode ``key`` (an int)
        or every dispatch whose ``t`` is ``key`` (a str). Handlers for op 0 see
        every dispatch, after the ones registered for its ``t``. Without
        ``handler``, returns a decorator."""
        if not self._initialised:
            raise RuntimeError(NOT_INITIALISED)
        return add_handler(self._op_handlers, self._t_handlers, key, handler)

    def off(self, key: Union[int, str], handler: Optional[Handler] = None) -> None:
        """Remove ``handler`` for ``key``, or every handler for ``key``."""
        if not self._initialised:
            raise RuntimeError(NOT_INITIALISED)
        remove_handler(self._op_handlers, self._t_handlers, key, handler)

    # -- feeding --------------------------------------------------------------

    def feed(self, data: Any) -> Optional[Packet]:
        """Decode one websocket message; return the Packet it completes, or None."""
        if self._busy:
            raise RuntimeError("Decoder.feed() re-entered while it is running")
        if self._poison is not None:
            self._raise_poisoned()
        self._busy = True
        try:
            try:
                raw = self._feed_one(self, data)
            except MemoryError:
                self._lost_to_memory()
                raise
            if raw is None:
                return None
            pkt = _make_packet(raw)
            self._payloads += 1
            op = pkt._op
            if op == 0 and pkt._s is not None:
                self._seq = pkt._s
        finally:
            self._busy = False
        if self._op_handlers or self._t_handlers:
            if op == 0:
                for handler in self._t_handlers.get(pkt._t, ()):  # type: ignore[arg-type]
                    handler(pkt)
            for handler in self._op_handlers.get(op, ()):
                handler(pkt)
        return pkt

    def feed_raw(self, data: Any) -> Optional[bytes]:
        """Like feed(), but return the complete payload's bytes (or None) and
        build no Packet: no envelope read, no handlers, no seq. Decompression,
        limits, poisoning, counters and exceptions are those of feed()."""
        if self._busy:
            raise RuntimeError("Decoder.feed() re-entered while it is running")
        if self._poison is not None:
            self._raise_poisoned()
        self._busy = True
        try:
            try:
                raw = self._feed_one(self, data)
            except MemoryError:
                self._lost_to_memory()
                raise
            if raw is not None:
                self._payloads += 1
            return raw
        finally:
            self._busy = False

    def _lost_to_memory(self) -> None:
        if self._compress is not None:  # part of the stream is consumed: it is lost
            self._poison = DecompressError(OUT_OF_MEMORY)
            self._buf = bytearray()

    def _raise_poisoned(self) -> None:
        if self._poison is _NOT_INITIALISED:
            raise RuntimeError(NOT_INITIALISED)
        raise type(self._poison)(
            f"decoder is poisoned by an earlier error ({self._poison}); call reset() for a new connection"
        )

    def _fail(self, exc: CodecError) -> CodecError:
        self._poison = exc
        return exc

    def _feed_plain(self, data: Any) -> bytes:
        if type(data) is str:
            try:
                raw = data.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise str_not_utf8_error(exc) from None
        elif type(data) is bytes:
            raw = data
        else:
            raw = _as_buffer(data).tobytes()
        n = len(raw)
        self._bytes_in += n
        if n > self._max:
            raise PayloadTooLarge(f"payload of {n} bytes exceeds max_payload_size={self._max}")
        self._bytes_out += n
        return raw

    def _feed_zlib(self, data: Any) -> Optional[bytes]:
        if type(data) is not bytes:
            if type(data) is str:
                raise TypeError("a compressed stream takes bytes-like messages, not str")
            data = _as_buffer(data)
        n = len(data)
        if not n:
            return None
        self._bytes_in += n
        body = self._consume_header(data) if self._need_header else data
        buf = self._buf
        out = b""
        if body:
            limit = self._max - len(buf)
            z = self._z
            try:
                out = z.decompress(body, limit + 1)
            except self._zmod.error as exc:
                raise self._fail(DecompressError(f"corrupt zlib-stream: {exc}")) from None
            if z.eof:
                raise self._fail(DecompressError("zlib-stream ended its deflate stream; a gateway stream never ends"))
            if len(out) > limit:
                raise self._fail(PayloadTooLarge(f"payload exceeds max_payload_size={self._max} bytes"))
            self._bytes_out += len(out)
        if n >= 4:
            if data[-4:] != ZLIB_SUFFIX:
                self._tail = bytes(data[-4:])
                if out:
                    buf += out
                return None
            if self._tail:
                self._tail = b""
        else:
            tail = (self._tail + bytes(data))[-4:]
            if tail != ZLIB_SUFFIX:
                self._tail = tail
                if out:
                    buf += out
                return None
            self._tail = b""
        if not buf:
            return out
        buf += out
        raw = bytes(buf)
        buf.clear()
        return raw

    def _consume_header(self, data: Any) -> Any:
        """Take the 2-byte zlib header (possibly split over messages) off ``data``."""
        need = 2 - len(self._header)
        self._header += bytes(data[:need])
        if len(self._header) < 2:
            return b""
        self._need_header = False
        cmf, flg = self._header
        if (cmf & 0x0F) != 8 or (cmf >> 4) > 7 or (cmf * 256 + flg) % 31 != 0 or flg & 0x20:
            raise self._fail(DecompressError(f"not a zlib stream: bad header {self._header.hex()}"))
        return data[need:]

    def _feed_zstd(self, data: Any) -> Optional[bytes]:
        if type(data) is not bytes:
            if type(data) is str:
                raise TypeError("a compressed stream takes bytes-like messages, not str")
            data = _as_buffer(data)
        n = len(data)
        if n == 0:
            return None
        self._bytes_in += n
        # Discord's message, one whole compressed (or raw) block inside the open
        # frame, is checked inline; anything else takes the full walk.
        if not (self._zs_in_frame and n >= 3 and not (h := _from_bytes(data[:3], "little")) & 3 and h >> 3 == n - 3):
            self._scan_zstd(data, n)
        # The common case, one call and one block of output, inline; a frame
        # ending inside the message (Spacebar) takes the shared loop of
        # _common.zstd_after_frame_end with what follows. _codec.pyx does the same.
        zs = self._zs
        try:
            raw = zs.decompress(data, self._max_plus_one)
        except _zstd.ZstdError as exc:
            raise self._fail(DecompressError(f"corrupt zstd-stream: {exc}")) from None
        if len(raw) > self._max:
            raise self._fail(PayloadTooLarge(f"payload exceeds max_payload_size={self._max} bytes"))
        if zs.eof:
            try:
                more, self._zs = zstd_after_frame_end(_zstd, zs.unused_data, self._max - len(raw), self._max)
            except CodecError as exc:
                raise self._fail(exc) from None
            if more is not None:
                raw = raw + more if raw else more
        if not raw:
            return None
        self._bytes_out += len(raw)
        return raw

    def _scan_zstd(self, data: Any, n: int) -> None:
        """Walk the frame and block headers of one message.

        A zstd-stream message must end on a block boundary (Discord flushes a
        block per payload) or at the end of a frame (Spacebar closes a frame
        per payload). A message that stops inside a header or a block was
        truncated: DecompressError, instead of waiting for bytes that belong
        to the next payload.
        """
        pos = 0
        in_frame = self._zs_in_frame
        checksum = self._zs_checksum
        while pos < n:
            left = n - pos
            if not in_frame:
                if left < 4:
                    raise self._fail(DecompressError("truncated zstd-stream message: incomplete frame header"))
                magic = data[pos] | data[pos + 1] << 8 | data[pos + 2] << 16 | data[pos + 3] << 24
                if magic == _ZSTD_MAGIC:
                    if left < 5:
                        raise self._fail(DecompressError("truncated zstd-stream message: incomplete frame header"))
                    fhd = data[pos + 4]
                    if fhd & 0x08:
                        raise self._fail(DecompressError("corrupt zstd-stream: reserved bit set in frame header"))
                    single = fhd & 0x20
                    fcs = fhd >> 6
                    size = 5 + (0 if single else 1) + (0, 1, 2, 4)[fhd & 3] + ((1 if single else 0), 2, 4, 8)[fcs]
                    if left < size:
                        raise self._fail(DecompressError("truncated zstd-stream message: incomplete frame header"))
                    checksum = bool(fhd & 0x04)
                    in_frame = True
                    pos += size
                elif magic & 0xFFFFFFF0 == 0x184D2A50:
                    if left < 8:
                        raise self._fail(DecompressError("truncated zstd-stream message: incomplete skippable frame"))
                    size = data[pos + 4] | data[pos + 5] << 8 | data[pos + 6] << 16 | data[pos + 7] << 24
                    if left - 8 < size:
                        raise self._fail(DecompressError("truncated zstd-stream message: incomplete skippable frame"))
                    pos += 8 + size
                else:
                    raise self._fail(DecompressError("corrupt zstd-stream: not a zstd frame (bad magic number)"))
            else:
                if left < 3:
                    raise self._fail(DecompressError("truncated zstd-stream message: incomplete block header"))
                header = data[pos] | data[pos + 1] << 8 | data[pos + 2] << 16
                kind = (header >> 1) & 3
                if kind == 3:
                    raise self._fail(DecompressError("corrupt zstd-stream: reserved block type"))
                size = 1 if kind == 1 else header >> 3
                if left - 3 < size:
                    raise self._fail(DecompressError("truncated zstd-stream message: incomplete block"))
                pos += 3 + size
                if header & 1:  # last block of the frame
                    if checksum:
                        if n - pos < 4:
                            raise self._fail(DecompressError("truncated zstd-stream message: incomplete frame checksum"))
                        pos += 4
                    in_frame = False
        self._zs_in_frame = in_frame
        self._zs_checksum = checksum


_FEEDERS: dict[Optional[str], Callable[[Decoder, Any], Optional[bytes]]] = {
    "zlib-stream": Decoder._feed_zlib,
    "zstd-stream": Decoder._feed_zstd,
    None: Decoder._feed_plain,
}
