"""Build mijcodec, compiling ``mijcodec._codec`` from ``mijcodec/_codec.pyx``
against zlib. zstd-stream needs no headers: without them it goes through
backports.zstd / compression.zstd (a runtime dependency); with zstd.h and
libzstd found at build time the codec links libzstd and decodes with it
directly whenever it is the release that dependency runs.

Environment:
  MIJCODEC_NO_EXTENSIONS=1        pure-Python install, nothing compiled
  MIJCODEC_REQUIRE_EXTENSIONS=1   a failed compile fails the install (CI, wheels)
  MIJCODEC_INCLUDE_DIRS / MIJCODEC_LIBRARY_DIRS   extra paths (os.pathsep-separated)
  MIJCODEC_LIBRARIES              libraries to link (comma-separated;
                                  default "z", on Windows "zlib")
  MIJCODEC_CYTHON_TRACE=1         line tracing, for coverage of the .pyx
  MIJCODEC_ZLIBNG=auto|1|0        link zlib-ng's native API too (zlib-ng.h and
                                  libz-ng found with the paths above): "auto"
                                  (default) when a test program builds, "1"
                                  requires it, "0" never
  MIJCODEC_ZLIBNG_LIBRARY         its library name (default "z-ng", on Windows
                                  "zlib-ng")
  MIJCODEC_ZSTD=auto|1|0          link libzstd too (zstd.h and libzstd found
                                  with the paths above), like MIJCODEC_ZLIBNG
  MIJCODEC_ZSTD_LIBRARY           its library name (default "zstd")

Without MIJCODEC_REQUIRE_EXTENSIONS a failed compile still installs, pure
Python, with a banner saying so and why; the reason is also recorded in the
package, so ``import mijcodec`` warns and ``python -m mijcodec`` tells.
"""

import glob
import importlib.machinery
import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py


def flag(name):
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no", "off")


def paths(name):
    return [p for p in os.environ.get(name, "").split(os.pathsep) if p]


NO_EXTENSIONS = flag("MIJCODEC_NO_EXTENSIONS")
REQUIRE_EXTENSIONS = flag("MIJCODEC_REQUIRE_EXTENSIONS")
TRACE = flag("MIJCODEC_CYTHON_TRACE")
WINDOWS = sys.platform == "win32"
FAILED_MARKER = "_BUILD_FAILED"  # see mijcodec/__init__.py
HERE = os.path.dirname(os.path.abspath(__file__))


def remove_stale_extensions(base):
    """Delete compiled ``mijcodec._codec`` files under ``base`` (a build_lib or
    the source tree): a pure-Python build must not ship, or import, the
    extension an earlier build left behind next to its _BUILD_FAILED marker."""
    removed = []
    for suffix in set(importlib.machinery.EXTENSION_SUFFIXES) | {".so", ".pyd"}:
        for path in glob.glob(os.path.join(glob.escape(base), "mijcodec", "_codec*" + suffix)):
            if os.path.basename(path).split(".", 1)[0] == "_codec" and os.path.isfile(path):
                os.remove(path)
                removed.append(path)
    for path in removed:
        sys.stderr.write(f"mijcodec: removed the stale compiled codec {path}\n")
    return removed


ZLIBNG = os.environ.get("MIJCODEC_ZLIBNG", "auto").strip().lower() or "auto"
ZLIBNG_LIBRARY = os.environ.get("MIJCODEC_ZLIBNG_LIBRARY", "").strip() or ("zlib-ng" if WINDOWS else "z-ng")
ZLIBNG_PROBE = """
#include <zlib-ng.h>
int main(void) {
    zng_stream s = {0};
    if (zng_inflateInit2(&s, -15) != Z_OK) return 1;
    return zng_inflateEnd(&s) == Z_OK ? 0 : 1;
}
"""


ZSTD = os.environ.get("MIJCODEC_ZSTD", "auto").strip().lower() or "auto"
ZSTD_LIBRARY = os.environ.get("MIJCODEC_ZSTD_LIBRARY", "").strip() or "zstd"
ZSTD_PROBE = """
#include <zstd.h>
int main(void) {
    ZSTD_DCtx *d = ZSTD_createDCtx();
    if (d == NULL) return 1;
    ZSTD_freeDCtx(d);
    return ZSTD_versionNumber() >= 10400 ? 0 : 1;
}
"""


def codec_extension():
    default_libs = "zlib" if WINDOWS else "z"
    libraries = [x for x in os.environ.get("MIJCODEC_LIBRARIES", default_libs).split(",") if x]
    macros = [("CYTHON_TRACE", "1"), ("CYTHON_TRACE_NOGIL", "1")] if TRACE else []
    extension = Extension(
        "mijcodec._codec",
        ["mijcodec/_codec.pyx"],
        include_dirs=paths("MIJCODEC_INCLUDE_DIRS"),
        library_dirs=paths("MIJCODEC_LIBRARY_DIRS"),
        libraries=libraries,
        define_macros=macros,
        extra_compile_args=["/O2"] if WINDOWS else ["-O3"],
    )
    if TRACE:
        extension.cython_directives = {"linetrace": True}
    return extension


class BuildExtOrFallBack(build_ext):
    """Compile the codec; if that fails, say so loudly and install pure Python
    (or fail, with MIJCODEC_REQUIRE_EXTENSIONS=1)."""

    failure = None

    def run(self):
        try:
            super().run()
        except Exception as exc:  # compiler, headers or Cython missing...
            self._fall_back(exc)
        if self.failure is not None:
            for base in self._bases():
                remove_stale_extensions(base)
        self._write_marker(self.failure)

    def _bases(self):
        bases = {self.build_lib}
        if self.inplace:
            bases.add(HERE)
        return bases

    def build_extension(self, ext):
        try:
            if ext.name == "mijcodec._codec":
                self._configure_zlib_ng(ext)
                self._configure_zstd(ext)
            super().build_extension(ext)
        except Exception as exc:
            self._fall_back(exc)

    def _probe(self, ext, name, source, library):
        """None when ``source`` compiles and links against ``library`` with the
        extension's paths, else the exception saying why not."""
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, name + ".c")
            with open(src, "w", encoding="ascii") as f:
                f.write(source)
            try:
                objs = self.compiler.compile([src], output_dir=tmp, include_dirs=ext.include_dirs)
                self.compiler.link_executable(objs, name, output_dir=tmp,
                                              libraries=[library], library_dirs=ext.library_dirs)
            except Exception as exc:  # CompileError, LinkError
                return exc
        return None

    def _link_optional(self, ext, setting, variable, name, probe, library, macro, linked, missing):
        """Link ``library`` too when ``probe`` builds against it (``setting``:
        the value of ``variable``, "auto", "1" or "0"), defining ``macro``;
        say which way it went. "1" makes a missing library an error."""
        if setting in ("0", "no", "off", "false"):
            return
        found = self._probe(ext, name + "_probe", probe, library)
        if found is None:
            ext.define_macros.append((macro, "1"))
            ext.libraries.append(library)
            sys.stderr.write(f"mijcodec: linking {name} (lib{library}): {linked}\n")
        elif setting in ("1", "yes", "on", "true"):
            raise RuntimeError(f"{variable}=1 but {name} (lib{library}) was not found: {found}")
        else:
            sys.stderr.write(f"mijcodec: {name} headers/library not found: {missing}\n")

    def _configure_zlib_ng(self, ext):
        """Link zlib-ng's native API as well when it is there (see MIJCODEC_ZLIBNG):
        the codec then inflates with zlib-ng by default when it is the zlib-ng
        package's release (mijcodec.ZLIB_INFLATER)."""
        self._link_optional(ext, ZLIBNG, "MIJCODEC_ZLIBNG", "zlib-ng", ZLIBNG_PROBE, ZLIBNG_LIBRARY, "MIJ_HAVE_ZLIBNG",
                            "zlib-stream inflates with zlib-ng when it is the zlib-ng package's release",
                            "the compiled codec inflates with the system zlib")

    def _configure_zstd(self, ext):
        """Link libzstd as well when it is there (see MIJCODEC_ZSTD): the codec
        then decodes zstd-stream with it whenever it is the release the
        fallback's decompressor runs (mijcodec.ZSTD_DECOMPRESSOR says)."""
        self._link_optional(ext, ZSTD, "MIJCODEC_ZSTD", "libzstd", ZSTD_PROBE, ZSTD_LIBRARY, "MIJ_HAVE_ZSTD",
                            "zstd-stream decodes with it when it is backports.zstd's / compression.zstd's release",
                            "zstd-stream goes through backports.zstd / compression.zstd's decompressor")

    def _fall_back(self, exc):
        if REQUIRE_EXTENSIONS:
            raise exc
        if self.failure is not None:
            # a consequence of the first failure (an in-place build then
            # cannot copy the extension it did not build): keep the cause
            return
        self.failure = f"{type(exc).__name__}: {exc}"
        bar = "*" * 78
        sys.stderr.write(
            f"\n{bar}\n"
            "  mijcodec: PURE-PYTHON BUILD. The compiled codec (mijcodec._codec)\n"
            "  could not be built, so this install runs the slower pure-Python\n"
            "  fallback. Reason:\n"
            f"    {self.failure}\n"
            "  Install a C compiler and the zlib headers (Debian/Ubuntu:\n"
            "  apt-get install gcc zlib1g-dev) and reinstall, or set\n"
            "  MIJCODEC_REQUIRE_EXTENSIONS=1 to make this an error.\n"
            f"{bar}\n\n"
        )

    def _write_marker(self, reason):
        # The marker travels in the package (wheel or in-place build) so that
        # the installed mijcodec can tell why it runs pure Python.
        for base in self._bases():
            target = os.path.join(base, "mijcodec", FAILED_MARKER)
            if reason is None:
                if os.path.exists(target):
                    os.remove(target)
            elif os.path.isdir(os.path.dirname(target)):
                with open(target, "w", encoding="utf-8") as f:
                    f.write(reason + "\n")


class BuildPyPure(build_py):
    """With MIJCODEC_NO_EXTENSIONS=1 build_ext does not run at all: take out
    an extension (and failure marker) an earlier build left in build_lib, so
    the pure install is what it says."""

    def run(self):
        super().run()
        if NO_EXTENSIONS:
            remove_stale_extensions(self.build_lib)
            marker = os.path.join(self.build_lib, "mijcodec", FAILED_MARKER)
            if os.path.exists(marker):
                os.remove(marker)


setup(
    ext_modules=[] if NO_EXTENSIONS else [codec_extension()],
    cmdclass={"build_ext": BuildExtOrFallBack, "build_py": BuildPyPure},
)
