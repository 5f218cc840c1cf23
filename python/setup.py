# SPDX-License-Identifier: MIT
"""Build the tickcache extension against libtickcache.

Where the library comes from, first match wins:

1. TICKCACHE_BUILDDIR=<dir>: <dir>/libtickcache.a of a build of this tree
   (set by `make python`, so that sanitizer builds link their own library);
2. ../build/libtickcache.a beside this directory (a source tree), built
   with `make lib` when it is missing;
3. an installed libtickcache found by `pkg-config tickcache`.

liburcu and libxxhash, which the static library needs, come from
pkg-config.  The library's symbols are linked into the extension and kept
hidden (--exclude-libs), so the module exports only PyInit__tickcache.
TICKCACHE_WERROR=1 makes compiler warnings errors.
"""
import os
import re
import shlex
import subprocess
import sys

from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def pkg_config(*args):
    try:
        out = subprocess.run(["pkg-config", *args], check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return shlex.split(out.stdout)


def version():
    for header in (os.path.join(ROOT, "include", "tickcache.h"),):
        if os.path.exists(header):
            with open(header, encoding="utf-8") as f:
                m = re.search(r'#define TC_VERSION_STRING "([^"]+)"', f.read())
            if m:
                return m.group(1)
    out = pkg_config("--modversion", "tickcache")
    return out[0] if out else "0.1.0"


def library():
    """(include_dirs, extra_objects, libraries/flags, depends) for the library."""
    builddir = os.environ.get("TICKCACHE_BUILDDIR")
    if not builddir and os.path.exists(os.path.join(ROOT, "Makefile")) and \
            os.path.exists(os.path.join(ROOT, "include", "tickcache.h")):
        builddir = os.path.join(ROOT, "build")
        if not os.path.exists(os.path.join(builddir, "libtickcache.a")):
            subprocess.run(["make", "-C", ROOT, "--no-print-directory", "lib"], check=True)
    if builddir:
        lib = os.path.join(os.path.abspath(builddir), "libtickcache.a")
        if not os.path.exists(lib):
            sys.exit(f"setup.py: {lib} is missing (run make lib)")
        deps = pkg_config("--libs", "liburcu", "libxxhash")
        if deps is None:
            sys.exit("setup.py: pkg-config cannot find liburcu and libxxhash "
                     "(tools/deps.sh installs them)")
        header = os.path.join(ROOT, "include", "tickcache.h")
        return [os.path.join(ROOT, "include")], [lib], deps + ["-lpthread", "-lm"], [lib, header]
    cflags = pkg_config("--cflags", "tickcache")
    libs = pkg_config("--libs", "tickcache")
    if libs is None:
        sys.exit("setup.py: no libtickcache: build this tree (make lib) or install it "
                 "(make install) so that pkg-config finds tickcache")
    incs = [f[2:] for f in cflags or [] if f.startswith("-I")]
    return incs, [], libs, []


incs, objs, libs, depends = library()
warn = ["-Wall", "-Wextra", "-Wshadow", "-Wformat=2", "-Wwrite-strings",
        "-Wno-missing-field-initializers", "-Wno-cast-function-type"]
if os.environ.get("TICKCACHE_WERROR") == "1":
    warn.append("-Werror")

ext = Extension(
    "tickcache._tickcache",
    sources=["tickcache/_tickcache.c"],
    include_dirs=incs,
    extra_objects=objs,
    extra_compile_args=["-std=gnu11", "-D_GNU_SOURCE", *warn],
    extra_link_args=[*libs, "-Wl,--exclude-libs,ALL"],
    depends=depends,
)

setup(version=version(), packages=["tickcache"], include_package_data=False, ext_modules=[ext])
