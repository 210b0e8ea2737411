"""Build hook: put the prebuilt libcoordkv inside the wheel and tag the wheel for it.

The library is built by cargo, not here. It is taken from $COORDKV_LIB (a file),
else $COORDKV_LIB_DIR, else the repository's target/release then target/debug, and
copied to coordkv/_lib/ in the build tree (never into the source tree), where
coordkv/_ffi.py looks for it first. The code is pure Python calling through ctypes,
so the tag is py3-none-<platform>: any Python 3, this platform's library.
"""

import importlib.util
import os
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

# The platform's file name, from the package without importing it (that loads the library).
_spec = importlib.util.spec_from_file_location("_library_file", HERE / "coordkv" / "_library_file.py")
_library_file = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_library_file)
LIBRARY_FILE = _library_file.LIBRARY_FILE


def find_library() -> Path:
    explicit = os.environ.get("COORDKV_LIB")
    if explicit:
        candidates = [Path(explicit)]
    elif os.environ.get("COORDKV_LIB_DIR"):
        candidates = [Path(os.environ["COORDKV_LIB_DIR"]) / LIBRARY_FILE]
    else:
        candidates = [REPO / "target" / p / LIBRARY_FILE for p in ("release", "debug")]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise SystemExit(
        f"coordkv wheel: no {LIBRARY_FILE} at {', '.join(map(str, candidates))}; "
        "run `cargo build --release` first or set COORDKV_LIB / COORDKV_LIB_DIR "
        "(as absolute paths: the build runs in its own directory)"
    )


class BuildPyWithLibrary(build_py):
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "coordkv" / "_lib"
        target.mkdir(parents=True, exist_ok=True)
        source = find_library()
        shutil.copyfile(source, target / LIBRARY_FILE)
        print(f"coordkv wheel: bundled {source}")


class DistributionWithLibrary(Distribution):
    """Says it carries binary code, so the wheel is platform-specific and the package
    lands in platlib at the wheel's root."""

    def has_ext_modules(self) -> bool:
        return True


class PlatformWheel(bdist_wheel):
    def get_tag(self):
        _, _, platform = super().get_tag()
        return "py3", "none", platform


setup(
    distclass=DistributionWithLibrary,
    cmdclass={"build_py": BuildPyWithLibrary, "bdist_wheel": PlatformWheel},
)
