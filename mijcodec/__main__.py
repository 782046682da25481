"""``python -m mijcodec``: which mijcodec is this, and what does it run on?"""

import sys

import orjson

import mijcodec


def zstd_line() -> str:
    """"1.5.7 (libzstd linked in the compiled codec)", "1.5.7 (backports.zstd's
    decompressor; ...)" or "unavailable"."""
    if mijcodec.ZSTD_DECOMPRESSOR is None:
        return "unavailable"
    if mijcodec.ZSTD_DECOMPRESSOR == "libzstd":
        return f"{mijcodec.ZSTD_VERSION} (libzstd linked in the compiled codec, the release of the fallback's decompressor)"
    line = f"{mijcodec.ZSTD_VERSION} ({mijcodec.ZSTD_DECOMPRESSOR}'s decompressor"
    linked = getattr(mijcodec._impl, "_ZSTD_LINKED_VERSION", "")
    if linked:
        line += f"; the linked libzstd {linked} is another release, unused"
    return line + ")"


def main() -> int:
    print(f"mijcodec {mijcodec.__version__}")
    print(f"implementation: {mijcodec.IMPLEMENTATION} ({mijcodec._impl.__name__})")
    if mijcodec.BUILD_FAILURE:
        print(f"compiled codec failed to build: {mijcodec.BUILD_FAILURE}")
    name = "system zlib" if mijcodec.ZLIB_INFLATER == "zlib" else mijcodec.ZLIB_INFLATER
    others = "".join(
        f"; also available: {'system zlib' if k == 'zlib' else k} {v}" for k, v in mijcodec.INFLATERS.items() if k != mijcodec.ZLIB_INFLATER
    )
    print(f"zlib: {mijcodec.ZLIB_VERSION} ({name}{others})")
    print(f"zstd: {zstd_line()}")
    print(f"orjson: {orjson.__version__}")
    print(f"python: {sys.version.split()[0]} ({sys.implementation.name})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
