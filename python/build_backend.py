# SPDX-License-Identifier: MIT
"""PEP 517 build backend of the tickcache package.

setuptools' own backend (setuptools.build_meta) is used whenever the
``wheel`` package is importable.  Without it (an interpreter with
setuptools only, such as a pyenv build; Debian's python3-wheel provides
it), a wheel is written here: the package and its extension are built with
``setup.py build`` and zipped with the metadata files of PEP 427 / PEP 376,
so that ``pip install ./python --no-build-isolation`` works offline with
setuptools alone.
"""
import base64
import hashlib
import os
import subprocess
import sys
import sysconfig
import tempfile
import zipfile

from setuptools import build_meta as _sb

try:
    import wheel  # noqa: F401
    _HAVE_WHEEL = True
except ImportError:
    _HAVE_WHEEL = False

build_sdist = _sb.build_sdist
get_requires_for_build_sdist = _sb.get_requires_for_build_sdist

if _HAVE_WHEEL:
    build_wheel = _sb.build_wheel
    get_requires_for_build_wheel = _sb.get_requires_for_build_wheel
    prepare_metadata_for_build_wheel = _sb.prepare_metadata_for_build_wheel
else:
    def get_requires_for_build_wheel(config_settings=None):
        """Nothing beyond setuptools."""
        return []

    def _version():
        out = subprocess.run([sys.executable, "setup.py", "--version"], check=True,
                             capture_output=True, text=True)
        return out.stdout.strip().splitlines()[-1]

    def _tag():
        impl = f"cp{sys.version_info[0]}{sys.version_info[1]}"
        abi = impl + getattr(sys, "abiflags", "")
        plat = sysconfig.get_platform().replace("-", "_").replace(".", "_")
        return f"{impl}-{abi}-{plat}"

    def _metadata(version):
        with open("README.md", encoding="utf-8") as f:
            readme = f.read()
        return ("Metadata-Version: 2.1\nName: tickcache\n"
                f"Version: {version}\n"
                "Summary: Python bindings for tickcache, a lock-free shared-memory cache\n"
                "License: MIT\nRequires-Python: >=3.9\n"
                "Provides-Extra: pydantic\nRequires-Dist: pydantic; extra == \"pydantic\"\n"
                "Provides-Extra: orjson\nRequires-Dist: orjson; extra == \"orjson\"\n"
                "Description-Content-Type: text/markdown\n\n" + readme)

    def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
        """Build the extension with setup.py and write the wheel."""
        version = _version()
        tag = _tag()
        name = f"tickcache-{version}-{tag}.whl"
        distinfo = f"tickcache-{version}.dist-info"
        with tempfile.TemporaryDirectory() as tmp:
            lib = os.path.join(tmp, "lib")
            subprocess.run([sys.executable, "setup.py", "-q", "build", "--build-lib", lib,
                            "--build-temp", os.path.join(tmp, "temp")], check=True,
                           stdout=sys.stderr)
            files = []
            for root, _dirs, names in os.walk(lib):
                for n in sorted(names):
                    if n.endswith((".c", ".pyc")):
                        continue
                    full = os.path.join(root, n)
                    with open(full, "rb") as f:
                        files.append((os.path.relpath(full, lib), f.read()))
            files.append((f"{distinfo}/METADATA", _metadata(version).encode()))
            files.append((f"{distinfo}/WHEEL",
                          ("Wheel-Version: 1.0\nGenerator: tickcache build_backend\n"
                           f"Root-Is-Purelib: false\nTag: {tag}\n").encode()))
            files.append((f"{distinfo}/top_level.txt", b"tickcache\n"))
            record = []
            for path, data in files:
                digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
                record.append(f"{path},sha256={digest.decode()},{len(data)}")
            record.append(f"{distinfo}/RECORD,,")
            files.append((f"{distinfo}/RECORD", ("\n".join(record) + "\n").encode()))
            with zipfile.ZipFile(os.path.join(wheel_directory, name), "w",
                                 zipfile.ZIP_DEFLATED) as z:
                for path, data in files:
                    z.writestr(path, data)
        return name
