# The compiled codec (mijcodec/_codec.pyx) for type checkers and IDEs.
# CI checks it against the built extension with mypy's stubtest (.ci/run), so
# it cannot drift from what the module really has.

from typing import Any, Callable, Final, NoReturn, Optional, TypeVar, Union, final, overload

from mijcodec._common import DEFAULT_MAX_PAYLOAD_SIZE as DEFAULT_MAX_PAYLOAD_SIZE
from mijcodec._common import MAX_SEND_SIZE as MAX_SEND_SIZE
from mijcodec._common import ZLIB_SUFFIX as ZLIB_SUFFIX
from mijcodec._common import Opcode as Opcode
from mijcodec._common import encode as encode
from mijcodec._errors import CodecError as CodecError
from mijcodec._errors import DecodeError as DecodeError
from mijcodec._errors import DecompressError as DecompressError
from mijcodec._errors import EncodeError as EncodeError
from mijcodec._errors import PayloadTooLarge as PayloadTooLarge

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

#: Version of the zlib library doing the inflating.
ZLIB_VERSION: Final[str]
#: "zlib-ng" or "zlib": the library zlib-stream inflates with by default.
ZLIB_INFLATER: Final[str]
#: The inflaters this implementation can use: name -> version.
INFLATERS: Final[dict[str, str]]
#: Version of the zstd library doing zstd-stream, or None when unavailable.
ZSTD_VERSION: Final[Optional[str]]
#: What decodes zstd-stream: "libzstd" (linked in) or the module whose
#: decompressor object does ("backports.zstd" / "compression.zstd").
ZSTD_DECOMPRESSOR: Final[Optional[str]]

_H = TypeVar("_H", bound=Callable[["Packet"], Any])

@final
class Packet:
    """One decoded gateway payload; only ``Decoder.feed()`` makes them."""

    def __init__(self, *args: Any, **kwargs: Any) -> NoReturn: ...
    def __reduce_ex__(self, protocol: Any, /) -> NoReturn: ...
    @property
    def op(self) -> Union[Opcode, int]: ...
    @property
    def s(self) -> Optional[int]: ...
    @property
    def t(self) -> Optional[str]: ...
    @property
    def raw(self) -> bytes: ...
    @property
    def d(self) -> Any: ...
    @property
    def raw_d(self) -> bytes: ...

@final
class Decoder:
    """Decodes the messages of one gateway connection."""

    def __init__(
        self, compress: Optional[str] = "zlib-stream", *, max_payload_size: int = ..., inflater: Optional[str] = None
    ) -> None: ...
    @property
    def inflater(self) -> Optional[str]: ...
    def __reduce_ex__(self, protocol: Any, /) -> NoReturn: ...
    def reset(self) -> None: ...
    @property
    def compress(self) -> Optional[str]: ...
    @property
    def max_payload_size(self) -> int: ...
    @property
    def seq(self) -> Optional[int]: ...
    @property
    def poisoned(self) -> bool: ...
    @property
    def buffer_size(self) -> int: ...
    @property
    def payloads(self) -> int: ...
    @property
    def bytes_in(self) -> int: ...
    @property
    def bytes_out(self) -> int: ...
    @overload
    def on(self, key: Union[int, str], handler: None = None) -> Callable[[_H], _H]: ...
    @overload
    def on(self, key: Union[int, str], handler: _H) -> _H: ...
    def off(self, key: Union[int, str], handler: Optional[Callable[[Packet], Any]] = None) -> None: ...
    def feed(self, data: Union[bytes, bytearray, memoryview, str, Any]) -> Optional[Packet]: ...
    def feed_raw(self, data: Union[bytes, bytearray, memoryview, str, Any]) -> Optional[bytes]: ...
