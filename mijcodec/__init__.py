"""mijcodec: a fast, correct Discord gateway codec.

This module is the one place that picks the implementation: the compiled
``mijcodec._codec`` when it is built, else the pure-Python
``mijcodec._codec_py``. ``MIJCODEC_NO_EXTENSIONS=1`` (at import time) forces
the pure-Python one; ``MIJCODEC_REQUIRE_EXTENSIONS=1`` turns a missing build
into an ImportError. ``mijcodec.IMPLEMENTATION`` says which one runs
(``"cython"`` or ``"python"``), and so does ``python -m mijcodec``.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

__version__ = "0.1.0"

#: Why the compiled codec is missing, when setup.py recorded a failed compile.
BUILD_FAILURE: "str | None" = None


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no", "off")


if TYPE_CHECKING:
    from . import _codec_py as _impl

    IMPLEMENTATION = "python"
elif _flag("MIJCODEC_NO_EXTENSIONS") or sys.implementation.name != "cpython":
    from . import _codec_py as _impl

    IMPLEMENTATION = "python"
else:
    import importlib

    try:
        _impl = importlib.import_module("mijcodec._codec")
    except ImportError as _exc:
        if _flag("MIJCODEC_REQUIRE_EXTENSIONS"):
            raise ImportError(
                "MIJCODEC_REQUIRE_EXTENSIONS is set but the compiled mijcodec._codec "
                f"cannot be imported: {_exc}"
            ) from _exc
        from . import _codec_py as _impl

        IMPLEMENTATION = "python"
        _failure = os.path.join(os.path.dirname(__file__), "_BUILD_FAILED")
        if os.path.exists(_failure):
            # setup.py recorded why the compile failed: say so, once, loudly.
            import warnings

            with open(_failure, encoding="utf-8") as _f:
                BUILD_FAILURE = _f.read().strip()
            warnings.warn(
                "mijcodec runs its pure-Python fallback because the compiled codec "
                f"failed to build at install time ({BUILD_FAILURE}); see `python -m mijcodec`",
                RuntimeWarning,
                stacklevel=2,
            )
    else:
        IMPLEMENTATION = "cython"

Opcode = _impl.Opcode
Decoder = _impl.Decoder
Packet = _impl.Packet
encode = _impl.encode
CodecError = _impl.CodecError
DecompressError = _impl.DecompressError
DecodeError = _impl.DecodeError
PayloadTooLarge = _impl.PayloadTooLarge
EncodeError = _impl.EncodeError
ZLIB_SUFFIX = _impl.ZLIB_SUFFIX
DEFAULT_MAX_PAYLOAD_SIZE = _impl.DEFAULT_MAX_PAYLOAD_SIZE
MAX_SEND_SIZE = _impl.MAX_SEND_SIZE
ZLIB_VERSION = _impl.ZLIB_VERSION
#: "zlib-ng" or "zlib": the library zlib-stream inflates with by default.
ZLIB_INFLATER = _impl.ZLIB_INFLATER
#: The inflaters the selected implementation can use: name -> version.
INFLATERS = _impl.INFLATERS
ZSTD_VERSION = _impl.ZSTD_VERSION
#: What decodes zstd-stream: "libzstd" (linked into the compiled codec, the
#: release ZSTD_VERSION names) or "backports.zstd" / "compression.zstd" (that
#: module's decompressor object); None when zstd-stream is unavailable.
ZSTD_DECOMPRESSOR = _impl.ZSTD_DECOMPRESSOR

__all__ = [
    "IMPLEMENTATION",
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
    "__version__",
]
