"""The exception hierarchy, shared by both implementations.

Both ``mijcodec._codec`` (compiled) and ``mijcodec._codec_py`` (pure Python) raise
these very classes, so ``except mijcodec.DecodeError`` works whichever one runs::

    CodecError (ValueError)
     +-- DecompressError   corrupt or truncated compressed stream; poisons the Decoder
     +-- PayloadTooLarge   payload past max_payload_size (poisons the Decoder), or
     |                     an encoded payload past the gateway's 4096-byte limit
     +-- DecodeError       not JSON, not an object, or a malformed envelope
     +-- EncodeError       encode() refused the opcode or could not serialise ``d``
"""

from __future__ import annotations

__all__ = ["CodecError", "DecompressError", "PayloadTooLarge", "DecodeError", "EncodeError"]


class CodecError(ValueError):
    """Base class of every error mijcodec raises about the data it was given."""


class DecompressError(CodecError):
    """The compressed stream is corrupt or truncated.

    The Decoder that raised it is poisoned: every later ``feed()`` raises again
    until ``reset()`` (a new connection) gives it a fresh decompression context.
    """


class PayloadTooLarge(CodecError):
    """A payload is larger than allowed.

    Raised by ``Decoder.feed()`` when a payload decompresses past
    ``max_payload_size`` (the Decoder is then poisoned until ``reset()``), and by
    ``encode()`` for a payload over the gateway's 4096-byte send limit.
    """


class DecodeError(CodecError):
    """The payload is not a valid gateway payload: not JSON, not an object,
    ``op`` missing or not an integer, ``s`` not an integer or null, ``t`` not a
    string or null."""


class EncodeError(CodecError):
    """``encode()`` refused: an opcode a client must not send, or a ``d`` that
    cannot be serialised to JSON."""
