"""``python -m mijcodec``: which mijcodec is this, and what does it run on?"""

import os
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


#: exit status when stdout was closed before everything was written (``| head -n 1``), as
#: ``gateway run`` (128 + SIGPIPE, what a shell reports for a process SIGPIPE killed)
EXIT_STDOUT_CLOSED = 141


def report() -> list[str]:
    lines = [f"mijcodec {mijcodec.__version__}",
             f"implementation: {mijcodec.IMPLEMENTATION} ({mijcodec._impl.__name__})"]
    if mijcodec.BUILD_FAILURE:
        lines.append(f"compiled codec failed to build: {mijcodec.BUILD_FAILURE}")
    name = "system zlib" if mijcodec.ZLIB_INFLATER == "zlib" else mijcodec.ZLIB_INFLATER
    others = "".join(
        f"; also available: {'system zlib' if k == 'zlib' else k} {v}" for k, v in mijcodec.INFLATERS.items() if k != mijcodec.ZLIB_INFLATER
    )
    lines.append(f"zlib: {mijcodec.ZLIB_VERSION} ({name}{others})")
    lines.append(f"zstd: {zstd_line()}")
    lines.append(f"orjson: {orjson.__version__}")
    lines.append(f"python: {sys.version.split()[0]} ({sys.implementation.name})")
    return lines


def main() -> int:
    try:
        sys.stdout.write("".join(line + "\n" for line in report()))
        sys.stdout.flush()
    except BrokenPipeError:
        # the reader is gone: no traceback, and nothing more for the interpreter to flush
        # into the closed pipe at exit
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_STDOUT_CLOSED
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
