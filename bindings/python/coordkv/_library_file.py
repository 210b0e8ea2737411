"""The library's file name on this platform: one definition for the loader (_ffi.py)
and the wheel build (setup.py, which reads this file without importing the package,
since importing coordkv loads the library)."""

import sys

if sys.platform == "darwin":
    LIBRARY_FILE = "libcoordkv.dylib"
elif sys.platform == "win32":
    LIBRARY_FILE = "coordkv.dll"
else:
    LIBRARY_FILE = "libcoordkv.so"
