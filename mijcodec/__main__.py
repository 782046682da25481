"""``python -m mijcodec``: which mijcodec is this, and what does it run on?"""

import sys

import orjson

import mijcodec


def main() -> int:
    print(f"mijcodec {mijcodec.__version__}")
    print(f"implementation: {mijcodec.IMPLEMENTATION} ({mijcodec._impl.__name__})")
    if mijcodec.BUILD_FAILURE:
        print(f"compiled codec failed to build: {mijcodec.BUILD_FAILURE}")
    print(f"zlib: {mijcodec.ZLIB_VERSION}")
    print(f"zstd: {mijcodec.ZSTD_VERSION or 'unavailable'}")
    print(f"orjson: {orjson.__version__}")
    print(f"python: {sys.version.split()[0]} ({sys.implementation.name})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
