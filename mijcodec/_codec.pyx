# cython: language_level=3
# cython: boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled implementation of the mijcodec codec.

Behaves exactly like ``mijcodec._codec_py`` (the readable reference; same
results, same exceptions), but:

* zlib-stream goes through zlib's C API: the 2-byte zlib header is checked
  once, then the stream is inflated raw (no adler32 over every byte), each
  message as it arrives, straight from the message's buffer into one reusable
  output buffer that shrinks back after an unusually large payload; the GIL is
  released while inflating large messages;
* zstd-stream: the frame and block headers of every message are walked in C
  (a message cut inside a block is a DecompressError, not a silent wait),
  then the blocks are decoded by libzstd's streaming API called from C (one
  context per connection, into the same reusable buffer as zlib-stream, the
  GIL released on large messages) when this build links libzstd and it is
  the release the fallback's decompressor (backports.zstd /
  compression.zstd) runs (``ZSTD_DECOMPRESSOR == "libzstd"``); otherwise by
  that decompressor object itself. Either way both implementations decode
  with one libzstd release: two releases do not agree on which corrupt
  frames they detect, and the two implementations must. A stream of one open
  frame (Discord) and of one closed frame per payload (Spacebar) both
  decode;
* the envelope of Discord's canonical ``{"t":..,"s":..,"op":..,"d":..}`` is
  read by a hand-written scanner, and ``d`` is only parsed (by orjson) when
  someone reads it.
"""

cimport cython
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.object cimport PyObject
from cpython.ref cimport Py_DECREF
from cpython.unicode cimport PyUnicode_DecodeASCII

cdef extern from "Python.h":
    Py_ssize_t PyUnicode_GET_LENGTH(object o)
    void* PyUnicode_1BYTE_DATA(object o)
from libc.stdlib cimport free, realloc
from libc.string cimport memcmp

from ._clibs cimport (
    Z_BUF_ERROR, Z_OK, Z_STREAM_END, Z_SYNC_FLUSH, inflate, inflateEnd, inflateInit2,
    inflateReset, uInt, z_stream, zlibVersion,
    MIJ_ZLIBNG, zlibng_version, zng_inflate, zng_inflateEnd, zng_inflateInit2, zng_inflateReset, zng_stream,
    MIJ_ZSTD, ZSTD_DCtx, ZSTD_DCtx_reset, ZSTD_createDCtx, ZSTD_decompressStream, ZSTD_freeDCtx,
    ZSTD_getErrorName, ZSTD_inBuffer, ZSTD_isError, ZSTD_outBuffer, ZSTD_reset_session_only, ZSTD_versionNumber,
)

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
    from compression import zstd as _zstd
except ImportError:
    try:
        from backports import zstd as _zstd
    except ImportError:
        _zstd = None

cdef extern from "Python.h":
    object PyMemoryView_FromMemory(char* mem, Py_ssize_t size, int flags)
    int PyBUF_READ
    # PyBytes_FromStringAndSize, NULL on failure instead of raising (the caller
    # poisons the decoder first)
    PyObject* _bytes_or_null "PyBytes_FromStringAndSize"(const char* s, Py_ssize_t n)
    void PyErr_Clear()

cdef extern from *:
    """
    /* One feed() at a time per Decoder, also on free-threaded builds and while
       the GIL is released around inflate: an atomic busy flag. */
    #if defined(_MSC_VER)
    #include <intrin.h>
    static int mij_try_enter(long *flag) {
        return _InterlockedCompareExchange((volatile long *)flag, 1, 0) == 0;
    }
    static void mij_leave(long *flag) { _InterlockedExchange((volatile long *)flag, 0); }
    #else
    static int mij_try_enter(long *flag) {
        long expected = 0;
        return __atomic_compare_exchange_n(flag, &expected, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
    }
    static void mij_leave(long *flag) { __atomic_store_n(flag, 0, __ATOMIC_RELEASE); }
    #endif
    """
    int mij_try_enter(long* flag) nogil
    void mij_leave(long* flag) nogil

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

#: The zlib libraries this build inflates with: name -> version. "zlib" is
#: the system zlib; "zlib-ng" is zlib-ng's native API, when setup.py found
#: zlib-ng at build time.
INFLATERS = {"zlib": zlibVersion().decode("ascii")}
if MIJ_ZLIBNG:
    INFLATERS["zlib-ng"] = zlibng_version().decode("ascii")
#: The inflater a Decoder uses unless told otherwise: zlib-ng when this build
#: links it and the fallback of this install can use the same release (the
#: zlib-ng package), so both implementations inflate with the same library;
#: else zlib.
ZLIB_INFLATER = install_inflater(INFLATERS.get("zlib-ng", ""))
#: Version of the zlib library doing the inflating (of ZLIB_INFLATER).
ZLIB_VERSION = INFLATERS[ZLIB_INFLATER]
cdef object _ZstdError = _zstd.ZstdError if _zstd is not None else None

#: Version of the zstd library doing zstd-stream, or None when unavailable.
ZSTD_VERSION = _zstd.zstd_version if _zstd is not None else None
#: What decodes zstd-stream: "libzstd" (linked into this build, and the
#: release ZSTD_VERSION names) or the decompressor object of
#: "backports.zstd" / "compression.zstd"; None when unavailable.
ZSTD_DECOMPRESSOR = zstd_decompressor(_zstd, ZSTD_versionNumber() if MIJ_ZSTD else 0)
# the libzstd this build links ("" for none), used or not: python -m mijcodec tells
_ZSTD_LINKED_VERSION = (
    f"{ZSTD_versionNumber() // 10000}.{ZSTD_versionNumber() // 100 % 100}.{ZSTD_versionNumber() % 100}"
    if MIJ_ZSTD else "")
cdef bint _ZSTD_NATIVE = ZSTD_DECOMPRESSOR == "libzstd"
cdef str _ZSTD_ERROR_PREFIX = "corrupt zstd-stream: Unable to decompress Zstandard data: "

# the poison of a Decoder whose __init__ has not run (see __cinit__)
cdef object _NOT_INITIALISED = RuntimeError(NOT_INITIALISED)
cdef str _NOT_MADE_BY_A_DECODER = "this Packet was not made by Decoder.feed() and has no payload"
cdef object _loads = orjson.loads
cdef object _JSONDecodeError = orjson.JSONDecodeError
cdef object _OPCODES = OPCODES
# op value -> Opcode member (or None) for the values a C array lookup covers
cdef list _OPCODE_TABLE = [OPCODES.get(i) for i in range(64)]
cdef object _DISPATCH = Opcode.DISPATCH

cdef enum:
    MODE_NONE = 0
    MODE_ZLIB = 1
    MODE_ZSTD = 2

cdef enum:
    R_OK = 0
    R_TOO_LARGE = 1
    R_NOMEM = 2
    R_STREAM_END = 3
    R_ERROR = 4
    R_MORE = 5

# The output buffer starts at 64 KiB, grows by doubling, and is given back
# after any payload that made it larger than 256 KiB (gateway payloads are
# mostly a few KiB; a GUILD_CREATE of a big guild can be many MiB, and its
# buffer must not stay with the connection).
cdef size_t INITIAL_BUFFER = 64 * 1024
cdef size_t SHRINK_ABOVE = 256 * 1024
# Messages at least this big are inflated with the GIL released.
cdef Py_ssize_t NOGIL_THRESHOLD = 16 * 1024
cdef unsigned int ZSTD_MAGIC = 0xFD2FB528U


@cython.final
@cython.auto_pickle(False)
cdef class Packet:
    """One decoded gateway payload.

    ``op``, ``s`` and ``t`` are read when the packet is made; ``d`` is parsed
    from JSON on first access and cached, so a packet nobody reads costs no
    JSON object building. ``raw`` is the whole decompressed payload (bytes).
    Absent ``t``, ``s`` or ``d`` keys read as None.
    """

    cdef readonly object op
    cdef readonly object s
    cdef readonly object t
    cdef readonly bytes raw
    cdef object _d
    cdef Py_ssize_t _d_start
    cdef bint _ready

    def __init__(self, *args, **kwargs):
        raise TypeError("Packet cannot be created directly: Decoder.feed() makes packets")

    def __reduce_ex__(self, protocol):
        raise TypeError("cannot pickle 'Packet' object")

    @property
    def d(self):
        cdef object d
        with cython.critical_section(self):
            if self._ready:
                return self._d
            if self.raw is None:  # made by Packet.__new__, not by a Decoder
                raise TypeError(_NOT_MADE_BY_A_DECODER)
            try:
                d = _loads(PyMemoryView_FromMemory(
                    PyBytes_AS_STRING(self.raw) + self._d_start,
                    PyBytes_GET_SIZE(self.raw) - 1 - self._d_start,
                    PyBUF_READ,
                ))
            except _JSONDecodeError:
                d = reparse_d(self.raw, self.op, self.s, self.t)
            self._d = d
            self._ready = True
            return d

    @property
    def raw_d(self):
        """The JSON text of ``d`` exactly as it is in the payload (bytes), not
        parsed; ``b"null"`` when the payload has no ``d``. See the README."""
        cdef const unsigned char* p
        cdef Py_ssize_t n, end, after
        if self.raw is None:
            raise TypeError(_NOT_MADE_BY_A_DECODER)
        if self._d_start == 0:  # fully parsed when made: a valid payload
            return raw_d_of_parsed(self.raw)
        p = <const unsigned char*>PyBytes_AS_STRING(self.raw)
        n = PyBytes_GET_SIZE(self.raw)
        end = _json_value_end(p, self._d_start, n)
        if end > 0:
            after = end
            while after < n - 1 and (p[after] == c' ' or p[after] == c'\t' or p[after] == c'\n' or p[after] == c'\r'):
                after += 1
            if after == n - 1:  # d is the last key: its text, up to the final brace
                return PyBytes_FromStringAndSize(<const char*>p + self._d_start, end - self._d_start)
        # keys after d, or broken JSON: the full parse decides, as for d
        return raw_d_canonical(self.raw, self._d_start, self.op, self.s, self.t)

    def __repr__(self):
        return f"Packet(op={self.op!r}, s={self.s!r}, t={self.t!r})"


cdef Py_ssize_t _json_value_end(const unsigned char* p, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    """The index after the JSON value at ``p[i]``, or -1: strings, nesting and
    scalar tokens only, as ``_common.json_value_end`` (exact on valid JSON)."""
    cdef Py_ssize_t depth = 0, start = i
    cdef unsigned char c
    if i >= n:
        return -1
    c = p[i]
    if c != c'{' and c != c'[' and c != c'"':
        while i < n:
            c = p[i]
            if (c == c' ' or c == c'\t' or c == c'\n' or c == c'\r' or c == 0x0B or c == 0x0C or c == c','
                    or c == c':' or c == c'[' or c == c']' or c == c'{' or c == c'}' or c == c'"'):
                break
            i += 1
        return i if i > start else -1
    while i < n:
        c = p[i]
        if c == c'"':
            i += 1
            while i < n and p[i] != c'"':
                i += 2 if p[i] == c'\\' else 1
            if i >= n:
                return -1
            if depth == 0:
                return i + 1
        elif c == c'{' or c == c'[':
            depth += 1
        elif c == c'}' or c == c']':
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return -1


cdef inline Py_ssize_t _scan_int(const unsigned char* p, Py_ssize_t i, Py_ssize_t n, long long* out) noexcept nogil:
    """``0`` or ``[1-9][0-9]{0,17}`` at ``p[i]``: the index after it, or -1."""
    cdef Py_ssize_t j
    cdef long long v
    if i >= n:
        return -1
    if p[i] == c'0':
        out[0] = 0
        return i + 1
    if p[i] < c'1' or p[i] > c'9':
        return -1
    v = 0
    j = i
    while j < n and j - i < 18 and c'0' <= p[j] <= c'9':
        v = v * 10 + (p[j] - c'0')
        j += 1
    out[0] = v
    return j


cdef object _event_name(list names, const unsigned char* p, Py_ssize_t n):
    """``t`` as a str, reusing one of the decoder's recent names (printable
    ASCII only reaches here): no allocation, and the str's hash, which the
    handler lookup needs, is already computed."""
    cdef object name
    for name in names:
        if PyUnicode_GET_LENGTH(name) == n and memcmp(PyUnicode_1BYTE_DATA(name), p, n) == 0:
            return name
    name = PyUnicode_DecodeASCII(<const char*>p, n, NULL)
    if len(names) < 64:
        names.append(name)
    return name


cdef Packet _make_packet(bytes raw, list names):
    """Read the envelope of one payload: the canonical fast path (the same
    rules as the regular expression in _codec_py) or a full parse."""
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(raw)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(raw)
    cdef Py_ssize_t i, t_start = -1, t_end = 0
    cdef long long s_val = 0, op_val = 0
    cdef bint s_null = True
    cdef Packet pkt = Packet.__new__(Packet)
    pkt.raw = raw
    i = -1
    if n >= 5 and memcmp(p, b'{"t":', 5) == 0:
        i = 5
        if n - i >= 4 and memcmp(p + i, b"null", 4) == 0:
            i += 4
        elif i < n and p[i] == c'"':
            i += 1
            t_start = i
            while i < n and 0x20 <= p[i] <= 0x7E and p[i] != c'"' and p[i] != c'\\':
                i += 1
            if i < n and p[i] == c'"':
                t_end = i
                i += 1
            else:
                i = -1
        else:
            i = -1
        if i >= 0:
            if n - i >= 5 and memcmp(p + i, b',"s":', 5) == 0:
                i += 5
                if n - i >= 4 and memcmp(p + i, b"null", 4) == 0:
                    i += 4
                else:
                    s_null = False
                    i = _scan_int(p, i, n, &s_val)
            else:
                i = -1
        if i >= 0:
            if n - i >= 6 and memcmp(p + i, b',"op":', 6) == 0:
                i = _scan_int(p, i + 6, n, &op_val)
            else:
                i = -1
        if i >= 0:
            if n - i >= 5 and memcmp(p + i, b',"d":', 5) == 0:
                i += 5
            else:
                i = -1
    if i >= 0 and p[n - 1] == c'}' and i < n - 1:
        member = _OPCODE_TABLE[op_val] if op_val < 64 else None
        pkt.op = op_val if member is None else member
        pkt.s = None if s_null else s_val
        pkt.t = None if t_start < 0 else _event_name(names, p + t_start, t_end - t_start)
        pkt._d_start = i
        pkt._d = None
        pkt._ready = False
    else:
        pkt.op, pkt.s, pkt.t, pkt._d = parse_envelope(raw)
        pkt._d_start = 0
        pkt._ready = True
    return pkt


ctypedef fused zstream_t:
    z_stream
    zng_stream


cdef int _open_stream(zstream_t* zs, bint ready) noexcept:
    """A raw-inflate stream (no adler32) ready for a new connection: reset
    when it was initialised already, else initialised. zlib's or zlib-ng's
    return code (Z_OK on success)."""
    if ready:
        if zstream_t is zng_stream:
            return zng_inflateReset(zs)
        return inflateReset(zs)
    zs.zalloc = NULL
    zs.zfree = NULL
    zs.opaque = NULL
    zs.next_in = NULL
    zs.avail_in = 0
    if zstream_t is zng_stream:
        return zng_inflateInit2(zs, -15)
    return inflateInit2(zs, -15)


cdef int _inflate_into(Decoder self, zstream_t* zs, const unsigned char* src, size_t n, int* zret) noexcept nogil:
    """The inflate loop of ``Decoder._inflate``, for zlib's or zlib-ng's stream."""
    cdef size_t room, chunk
    cdef int ret, grown
    while True:
        if self._len == self._cap:
            grown = self._grow()
            if grown != R_OK:
                return grown
        if zs.avail_in == 0 and n:
            chunk = n if n < 0x40000000 else 0x40000000
            zs.next_in = <unsigned char*>src
            zs.avail_in = <uInt>chunk
            src += chunk
            n -= chunk
        room = self._cap - self._len
        if room > 0x40000000:
            room = 0x40000000
        zs.next_out = <unsigned char*>self._buf + self._len
        zs.avail_out = <uInt>room
        if zstream_t is zng_stream:
            ret = zng_inflate(zs, Z_SYNC_FLUSH)
        else:
            ret = inflate(zs, Z_SYNC_FLUSH)
        self._len += room - zs.avail_out
        if ret == Z_STREAM_END:
            return R_STREAM_END
        if ret != Z_OK and ret != Z_BUF_ERROR:
            zret[0] = ret
            return R_ERROR
        if self._len > <size_t>self._max:
            return R_TOO_LARGE
        if zs.avail_in == 0 and n == 0 and zs.avail_out > 0:
            return R_OK
        if ret == Z_BUF_ERROR and zs.avail_out > 0 and n == 0:
            return R_OK


@cython.final
@cython.auto_pickle(False)
cdef class Decoder:
    """Decodes the messages of one gateway connection.

    ``compress`` is ``"zlib-stream"``, ``"zstd-stream"`` or ``None``/``"none"``
    (plain JSON frames). Feed it every websocket message in order; it returns a
    :class:`Packet` for each complete payload (None while a zlib-stream payload
    is incomplete) and calls the handlers registered with :meth:`on`.
    """

    cdef int _mode
    cdef object _compress
    cdef Py_ssize_t _max
    cdef object _max_plus_one
    cdef object _seq
    cdef readonly unsigned long long payloads
    cdef readonly unsigned long long bytes_in
    cdef readonly unsigned long long bytes_out
    cdef bint _initialised
    cdef list _names  # recent event names, reused instead of decoding t again
    cdef dict _op_handlers
    cdef dict _t_handlers
    cdef long _busy
    cdef object _poison
    # the reusable output buffer
    cdef char* _buf
    cdef size_t _cap
    cdef size_t _len
    # zlib-stream
    cdef z_stream _zs
    cdef zng_stream _zng
    cdef bint _zs_ready
    cdef bint _ng  # zlib-stream through zlib-ng (_zng), else zlib (_zs)
    cdef object _inflater
    cdef unsigned char _header[2]
    cdef int _header_len
    cdef unsigned char _tail[4]
    cdef int _tail_len
    # zstd-stream
    cdef object _zd
    cdef object _zd_decompress  # its bound decompress
    cdef ZSTD_DCtx* _zds  # or libzstd's own context (ZSTD_DECOMPRESSOR == "libzstd")
    cdef bint _zd_ended  # the last message scanned ended a frame (or held a skippable one)
    cdef bint _zd_in_frame
    cdef bint _zd_checksum

    def __cinit__(self):
        # A harmless state until __init__ succeeds (Decoder.__new__ alone makes
        # one): feed(), feed_raw() and reset() refuse it; nothing reads C state.
        self._buf = NULL
        self._cap = 0
        self._len = 0
        self._zds = NULL
        self._zs_ready = False
        self._ng = False
        self._inflater = None
        self._busy = 0
        self._initialised = False
        self._mode = MODE_NONE
        self._compress = None
        self._max = DEFAULT_MAX_PAYLOAD_SIZE
        self._max_plus_one = DEFAULT_MAX_PAYLOAD_SIZE + 1
        self._op_handlers = {}
        self._t_handlers = {}
        self._names = []
        self._poison = _NOT_INITIALISED

    def __init__(self, compress="zlib-stream", *, max_payload_size=DEFAULT_MAX_PAYLOAD_SIZE, inflater=None):
        cdef int mode
        # Once only: a second __init__ would free the buffer and reset the
        # inflate state under a feed() running in another thread (the GIL is
        # released while inflating). Every argument is checked before any
        # state changes.
        if self._initialised:
            raise TypeError(INITIALISED_TWICE)
        if compress == "none":
            compress = None
        if compress == "zlib-stream":
            mode = MODE_ZLIB
        elif compress == "zstd-stream":
            mode = MODE_ZSTD
        elif compress is None:
            mode = MODE_NONE
        else:
            raise ValueError(f"compress must be 'zlib-stream', 'zstd-stream' or None, not {compress!r}")
        if mode == MODE_ZSTD and _zstd is None:
            raise ValueError("zstd-stream needs backports.zstd (Python < 3.14) or compression.zstd")
        limit = payload_limit(max_payload_size)
        inflater = check_inflater(inflater, INFLATERS, ZLIB_INFLATER)
        self._inflater = inflater
        self._ng = inflater == "zlib-ng"
        self._mode = mode
        self._compress = compress
        self._max = limit
        self._max_plus_one = limit + 1
        self._seq = None
        self._new_context()
        self._initialised = True

    def __reduce_ex__(self, protocol):
        raise TypeError("cannot pickle 'Decoder' object: it holds one connection's stream state")

    def __dealloc__(self):
        if self._zs_ready:
            if self._ng:
                zng_inflateEnd(&self._zng)
            else:
                inflateEnd(&self._zs)
        if self._zds != NULL:
            ZSTD_freeDCtx(self._zds)
        free(self._buf)

    # -- state ----------------------------------------------------------------

    cdef _new_context(self):
        cdef int ret
        self._poison = None
        self._len = 0
        self._header_len = 0
        self._tail_len = 0
        self._zd_in_frame = False
        self._zd_checksum = False
        if self._cap > INITIAL_BUFFER:
            self._release_buffer()
        if self._mode == MODE_ZLIB:
            ret = _open_stream(&self._zng, self._zs_ready) if self._ng else _open_stream(&self._zs, self._zs_ready)
            if ret != Z_OK:
                raise MemoryError("inflateReset failed" if self._zs_ready else "inflateInit2 failed")
            self._zs_ready = True
        elif self._mode == MODE_ZSTD and _ZSTD_NATIVE:
            if self._zds == NULL:
                self._zds = ZSTD_createDCtx()
                if self._zds == NULL:
                    raise MemoryError("ZSTD_createDCtx failed")
            else:
                ZSTD_DCtx_reset(self._zds, ZSTD_reset_session_only)
        elif self._mode == MODE_ZSTD:
            self._zd = _zstd.ZstdDecompressor()
            self._zd_decompress = self._zd.decompress

    cdef void _release_buffer(self) noexcept:
        free(self._buf)
        self._buf = NULL
        self._cap = 0

    def reset(self):
        """A fresh decompression context and empty buffers, for a new connection.

        Clears a poisoned state. ``seq``, the counters and the handlers stay.
        """
        if not mij_try_enter(&self._busy):
            raise RuntimeError("Decoder.reset() called while feed() is running")
        try:
            if not self._initialised:
                raise RuntimeError(NOT_INITIALISED)
            self._new_context()
        finally:
            mij_leave(&self._busy)

    @property
    def inflater(self):
        """The zlib library a zlib-stream decoder inflates with ("zlib" or "zlib-ng")."""
        return self._inflater

    @property
    def compress(self):
        return self._compress

    @property
    def max_payload_size(self):
        return self._max

    @property
    def seq(self):
        """The last dispatch sequence number seen, None before any."""
        return self._seq

    @property
    def poisoned(self):
        return self._poison is not None and self._poison is not _NOT_INITIALISED

    @property
    def buffer_size(self):
        """Bytes allocated for the decoder's reusable output buffer (its
        capacity): 0 before the first compressed payload, 64 KiB after the
        usual ones, given back past 256 KiB. Implementation-specific."""
        return self._cap

    # -- handlers -------------------------------------------------------------

    def on(self, key, handler=None):
        """Call ``handler(packet)`` for every packet with opcode ``key`` (an int)
        or every dispatch whose ``t`` is ``key`` (a str). Handlers for op 0 see
        every dispatch, after the ones registered for its ``t``. Without
        ``handler``, returns a decorator."""
        if not self._initialised:
            raise RuntimeError(NOT_INITIALISED)
        return add_handler(self._op_handlers, self._t_handlers, key, handler)

    def off(self, key, handler=None):
        """Remove ``handler`` for ``key``, or every handler for ``key``."""
        if not self._initialised:
            raise RuntimeError(NOT_INITIALISED)
        remove_handler(self._op_handlers, self._t_handlers, key, handler)

    # -- feeding --------------------------------------------------------------

    def feed(self, data):
        """Decode one websocket message; return the Packet it completes, or None."""
        cdef object raw
        cdef Packet pkt
        cdef object op
        if not mij_try_enter(&self._busy):
            raise RuntimeError("Decoder.feed() re-entered while it is running")
        try:
            raw = self._payload(data)
            if raw is None:
                return None
            pkt = _make_packet(<bytes>raw, self._names)
            self.payloads += 1
            op = pkt.op
            # op 0 is always the Opcode.DISPATCH member (both parse paths map it)
            if op is _DISPATCH and pkt.s is not None:
                self._seq = pkt.s
        finally:
            mij_leave(&self._busy)
        if self._op_handlers or self._t_handlers:
            if op is _DISPATCH:
                for handler in self._t_handlers.get(pkt.t, ()):
                    handler(pkt)
            for handler in self._op_handlers.get(op, ()):
                handler(pkt)
        return pkt

    def feed_raw(self, data):
        """Like feed(), but return the complete payload's bytes (or None) and
        build no Packet: no envelope read, no handlers, no seq. Decompression,
        limits, poisoning, counters and exceptions are those of feed()."""
        cdef object raw
        if not mij_try_enter(&self._busy):
            raise RuntimeError("Decoder.feed() re-entered while it is running")
        try:
            raw = self._payload(data)
            if raw is not None:
                self.payloads += 1
            return raw
        finally:
            mij_leave(&self._busy)

    cdef inline object _payload(self, object data):
        """The payload one message completes (bytes), or None; raises and
        poisons as feed() documents. Called with the busy flag taken."""
        cdef Py_buffer view
        cdef object raw
        if self._poison is not None:
            if self._poison is _NOT_INITIALISED:
                raise RuntimeError(NOT_INITIALISED)
            raise type(self._poison)(
                f"decoder is poisoned by an earlier error ({self._poison}); call reset() for a new connection"
            )
        if self._mode == MODE_NONE:
            return self._feed_plain(data)
        if type(data) is str:
            raise TypeError("a compressed stream takes bytes-like messages, not str")
        _get_buffer(data, &view)
        try:
            if self._mode == MODE_ZLIB:
                raw = self._feed_zlib(<const unsigned char*>view.buf, view.len)
            else:
                raw = self._feed_zstd(data, <const unsigned char*>view.buf, view.len)
        finally:
            PyBuffer_Release(&view)
        return raw

    cdef _fail(self, exc):
        self._poison = exc
        return exc

    cdef object _feed_plain(self, data):
        cdef bytes raw
        cdef Py_buffer view
        if type(data) is str:
            try:
                raw = (<str>data).encode("utf-8")
            except UnicodeEncodeError as exc:
                raise str_not_utf8_error(exc) from None
        elif type(data) is bytes:
            raw = <bytes>data
        else:
            _get_buffer(data, &view)
            try:
                raw = PyBytes_FromStringAndSize(<char*>view.buf, view.len)
            finally:
                PyBuffer_Release(&view)
        n = PyBytes_GET_SIZE(raw)
        self.bytes_in += n
        if n > self._max:
            raise PayloadTooLarge(f"payload of {n} bytes exceeds max_payload_size={self._max}")
        self.bytes_out += n
        return raw

    cdef int _grow(self) noexcept nogil:
        """Make room in the output buffer, up to max_payload_size + 1 bytes."""
        cdef size_t limit = <size_t>self._max + 1
        cdef size_t cap
        cdef char* buf
        if self._cap >= limit:
            return R_TOO_LARGE
        cap = self._cap * 2 if self._cap else INITIAL_BUFFER
        if cap > limit:
            cap = limit
        buf = <char*>realloc(self._buf, cap)
        if buf == NULL:
            return R_NOMEM
        self._buf = buf
        self._cap = cap
        return R_OK

    cdef int _inflate(self, const unsigned char* src, size_t n, int* zret) noexcept nogil:
        """Inflate ``n`` bytes into the buffer (after what it holds)."""
        if self._ng:
            return _inflate_into(self, &self._zng, src, n, zret)
        return _inflate_into(self, &self._zs, src, n, zret)

    cdef object _feed_zlib(self, const unsigned char* p, Py_ssize_t n):
        cdef Py_ssize_t off = 0, i
        cdef unsigned int cmf, flg
        cdef size_t before, n_out
        cdef int r, zret = 0
        if n == 0:
            return None
        self.bytes_in += n
        if self._header_len < 2:
            while self._header_len < 2 and off < n:
                self._header[self._header_len] = p[off]
                self._header_len += 1
                off += 1
            if self._header_len == 2:
                cmf = self._header[0]
                flg = self._header[1]
                if (cmf & 0x0F) != 8 or (cmf >> 4) > 7 or (cmf * 256 + flg) % 31 != 0 or (flg & 0x20):
                    raise self._fail(DecompressError(
                        f"not a zlib stream: bad header {bytes(self._header[:2]).hex()}"))
        before = self._len
        if off < n:
            self._zs.avail_in = 0
            self._zng.avail_in = 0
            if n - off >= NOGIL_THRESHOLD:
                with nogil:
                    r = self._inflate(p + off, <size_t>(n - off), &zret)
            else:
                r = self._inflate(p + off, <size_t>(n - off), &zret)
            self._zs.avail_in = 0
            self._zng.avail_in = 0
            if r != R_OK:
                self._stream_lost(r, "zlib-stream")
                if r == R_ERROR:
                    zmsg = self._zng.msg if self._ng else self._zs.msg
                    msg = zmsg.decode("utf-8", "replace") if zmsg != NULL else "invalid input data"
                    raise self._fail(DecompressError(
                        f"corrupt zlib-stream: Error {zret} while decompressing data: {msg}"))
                raise self._fail(DecompressError(
                    "zlib-stream ended its deflate stream; a gateway stream never ends"))
            self.bytes_out += self._len - before
        # the last four bytes seen, across messages
        if n >= 4:
            for i in range(4):
                self._tail[i] = p[n - 4 + i]
            self._tail_len = 4
        else:
            for i in range(n):
                if self._tail_len == 4:
                    self._tail[0] = self._tail[1]
                    self._tail[1] = self._tail[2]
                    self._tail[2] = self._tail[3]
                    self._tail_len = 3
                self._tail[self._tail_len] = p[i]
                self._tail_len += 1
        if self._tail_len != 4 or memcmp(self._tail, b"\x00\x00\xff\xff", 4) != 0:
            return None
        self._tail_len = 0
        n_out = self._len
        self._len = 0
        return self._buffered_payload(n_out, "zlib-stream")

    cdef object _feed_zstd(self, object data, const unsigned char* p, Py_ssize_t n):
        if n == 0:
            return None
        self.bytes_in += n
        self._scan_zstd(p, n)
        if self._zds != NULL:
            return self._feed_zstd_native(p, n)
        # The common case, one call and one block of output, inline (this is
        # the hot path); a frame ending inside the message (Spacebar) takes the
        # shared loop of _common.zstd_after_frame_end with what follows.
        cdef object zd = self._zd
        cdef object raw
        try:
            raw = self._zd_decompress(data, self._max_plus_one)
        except _ZstdError as exc:
            raise self._fail(DecompressError(f"corrupt zstd-stream: {exc}")) from None
        except MemoryError:
            self._poison = DecompressError(OUT_OF_MEMORY)
            raise
        if len(raw) > self._max:
            raise self._fail(PayloadTooLarge(f"payload exceeds max_payload_size={self._max} bytes"))
        # zd.eof can only be true once a frame ended, which the scan saw: on
        # Discord's one open frame this attribute read is skipped every time
        if self._zd_ended and zd.eof:
            try:
                more, self._zd = zstd_after_frame_end(_zstd, zd.unused_data, self._max - len(raw), self._max)
                self._zd_decompress = self._zd.decompress
                if more is not None:
                    raw = raw + more if raw else more
            except CodecError as exc:
                raise self._fail(exc) from None
            except MemoryError:
                self._poison = DecompressError(OUT_OF_MEMORY)
                raise
        if not raw:
            return None
        self.bytes_out += len(raw)
        return raw

    cdef int _zstd_run(self, ZSTD_inBuffer* inb, ZSTD_outBuffer* out, size_t* zret, bint until_full) noexcept nogil:
        """Decode ``inb`` with libzstd into the buffer (``out`` over it), up to
        max_payload_size + 1 bytes: the loop of the fallback's decompressor
        object (backports.zstd's ``decompress``), except that a frame's end
        does not stop it: what follows goes on in the same context, reset
        for a new frame, as the fallback goes on with a fresh object. With
        ``until_full``, R_MORE when the buffer must grow (the caller goes on
        with the GIL released: a small message can inflate to a large payload)."""
        cdef size_t ret
        cdef int grown
        while True:
            if out.pos == out.size:
                if until_full:
                    return R_MORE
                grown = self._grow()
                if grown != R_OK:
                    return grown
                out.dst = self._buf
                out.size = self._cap
            ret = ZSTD_decompressStream(self._zds, out, inb)
            if ZSTD_isError(ret):
                zret[0] = ret
                return R_ERROR
            if ret == 0:  # a frame ended
                ZSTD_DCtx_reset(self._zds, ZSTD_reset_session_only)
                if inb.pos == inb.size:
                    break
            elif out.pos < out.size and inb.pos == inb.size:
                break
        return R_OK

    cdef object _feed_zstd_native(self, const unsigned char* p, Py_ssize_t n):
        cdef ZSTD_inBuffer inb
        cdef ZSTD_outBuffer out
        cdef size_t zret = 0
        cdef size_t produced
        cdef int r
        cdef bytes raw
        inb.src = p
        inb.size = <size_t>n
        inb.pos = 0
        out.pos = 0
        r = self._grow() if self._cap == 0 else R_OK
        if r == R_OK:
            out.dst = self._buf
            out.size = self._cap
            if n >= NOGIL_THRESHOLD:
                with nogil:
                    r = self._zstd_run(&inb, &out, &zret, False)
            else:
                r = self._zstd_run(&inb, &out, &zret, True)
                if r == R_MORE:  # a payload larger than the buffer: go on without the GIL
                    with nogil:
                        r = self._zstd_run(&inb, &out, &zret, False)
        produced = out.pos
        if r == R_OK and produced > <size_t>self._max:
            r = R_TOO_LARGE
        if r != R_OK:
            self._stream_lost(r, "zstd-stream")  # raises but for R_ERROR
            raise self._fail(DecompressError(
                _ZSTD_ERROR_PREFIX + ZSTD_getErrorName(zret).decode("ascii", "replace")))
        if produced == 0:
            return None
        raw = self._buffered_payload(produced, "zstd-stream")
        self.bytes_out += produced
        return raw

    cdef int _stream_lost(self, int r, str stream) except -1:
        """What every failed inflate or decode shares: the stream is lost
        whatever went wrong (the library consumed input), so the buffer is
        emptied and given back if it grew; out of memory poisons and raises
        MemoryError, a payload past the limit poisons and raises
        PayloadTooLarge. Other failures return, for the caller to raise its
        library's own error."""
        self._len = 0
        if self._cap > INITIAL_BUFFER:
            self._release_buffer()
        if r == R_NOMEM:
            self._poison = DecompressError(OUT_OF_MEMORY)
            raise MemoryError(f"out of memory growing the {stream} buffer")
        if r == R_TOO_LARGE:
            raise self._fail(PayloadTooLarge(f"payload exceeds max_payload_size={self._max} bytes"))
        return 0

    cdef bytes _buffered_payload(self, size_t n, str stream):
        """The first ``n`` bytes of the buffer as the payload's bytes; the
        buffer is given back after a payload that grew it past 256 KiB. Out of
        memory poisons (the payload is consumed: the stream cannot go on)."""
        cdef PyObject* obj = _bytes_or_null(self._buf, <Py_ssize_t>n)
        cdef bytes raw
        if obj == NULL:
            PyErr_Clear()
            self._poison = DecompressError(OUT_OF_MEMORY)
            raise MemoryError(f"out of memory copying a {stream} payload")
        raw = <bytes>obj
        Py_DECREF(raw)
        if self._cap > SHRINK_ABOVE:
            self._release_buffer()
        return raw

    cdef _scan_zstd(self, const unsigned char* p, Py_ssize_t n_signed):
        """Walk the frame and block headers of one message; see
        ``_codec_py.Decoder._scan_zstd`` for why.

        Every length comes off the wire as an unsigned 32-bit value (a
        skippable frame's size reaches 2**32 - 1): all of this arithmetic is
        size_t, compared only after ``left`` was checked to be large enough,
        so no sum can wrap on 32-bit builds either. The fallback's Python ints
        give the very same answers."""
        cdef size_t n = <size_t>n_signed
        cdef size_t pos = 0, left, size
        cdef bint in_frame = self._zd_in_frame
        cdef bint checksum = self._zd_checksum
        cdef unsigned int magic, fhd, header, kind
        cdef int single
        self._zd_ended = False
        while pos < n:
            left = n - pos
            if not in_frame:
                if left < 4:
                    raise self._fail(DecompressError("truncated zstd-stream message: incomplete frame header"))
                magic = p[pos] | (<unsigned int>p[pos + 1] << 8) | (<unsigned int>p[pos + 2] << 16) | (<unsigned int>p[pos + 3] << 24)
                if magic == ZSTD_MAGIC:
                    if left < 5:
                        raise self._fail(DecompressError("truncated zstd-stream message: incomplete frame header"))
                    fhd = p[pos + 4]
                    if fhd & 0x08:
                        raise self._fail(DecompressError("corrupt zstd-stream: reserved bit set in frame header"))
                    single = (fhd & 0x20) != 0
                    size = 5 + (0 if single else 1)
                    size += (0, 1, 2, 4)[fhd & 3]
                    if (fhd >> 6) == 0:
                        size += 1 if single else 0
                    else:
                        size += (0, 2, 4, 8)[fhd >> 6]
                    if left < size:
                        raise self._fail(DecompressError("truncated zstd-stream message: incomplete frame header"))
                    checksum = (fhd & 0x04) != 0
                    in_frame = True
                    pos += size
                elif (magic & 0xFFFFFFF0U) == 0x184D2A50U:
                    if left < 8:
                        raise self._fail(DecompressError("truncated zstd-stream message: incomplete skippable frame"))
                    size = <size_t>(p[pos + 4] | (<unsigned int>p[pos + 5] << 8) | (<unsigned int>p[pos + 6] << 16) | (<unsigned int>p[pos + 7] << 24))
                    if left - 8 < size:
                        raise self._fail(DecompressError("truncated zstd-stream message: incomplete skippable frame"))
                    pos += 8 + size
                    self._zd_ended = True
                else:
                    raise self._fail(DecompressError("corrupt zstd-stream: not a zstd frame (bad magic number)"))
            else:
                if left < 3:
                    raise self._fail(DecompressError("truncated zstd-stream message: incomplete block header"))
                header = p[pos] | (<unsigned int>p[pos + 1] << 8) | (<unsigned int>p[pos + 2] << 16)
                kind = (header >> 1) & 3
                if kind == 3:
                    raise self._fail(DecompressError("corrupt zstd-stream: reserved block type"))
                size = 1 if kind == 1 else (header >> 3)
                if left - 3 < size:
                    raise self._fail(DecompressError("truncated zstd-stream message: incomplete block"))
                pos += 3 + size
                if header & 1:
                    if checksum:
                        if n - pos < 4:
                            raise self._fail(DecompressError("truncated zstd-stream message: incomplete frame checksum"))
                        pos += 4
                    in_frame = False
                    self._zd_ended = True
        self._zd_in_frame = in_frame
        self._zd_checksum = checksum


cdef int _get_buffer(object data, Py_buffer* view) except -1:
    try:
        PyObject_GetBuffer(data, view, PyBUF_SIMPLE)
    except BufferError:
        raise TypeError("feed() expects a C-contiguous bytes-like object") from None
    except TypeError:
        raise TypeError(f"feed() expects a bytes-like object, not {type(data).__name__}") from None
    return 0
