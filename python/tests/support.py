# SPDX-License-Identifier: MIT
"""Fixtures of the Python test suite: uniquely named segments, always
unlinked, and the C tools of the build under test."""
import itertools
import os
import subprocess
import sys
import unittest

import tickcache

_seq = itertools.count()
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("TC_BIN") or os.path.join(ROOT, "build", "bin")


def unique_name(tag="t"):
    """A segment name no other test or run uses: branch, pid, counter."""
    return f"py-{tag}-{os.getpid()}-{next(_seq)}"


def tool(name):
    """Path of a built C tool, or None."""
    p = os.path.join(BIN, name)
    return p if os.access(p, os.X_OK) else None


def python_env():
    """Environment for a child interpreter that imports this tickcache."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(tickcache.__file__))
    return env


def run_python(code, *args, timeout=60):
    """Run CODE in a fresh interpreter; (returncode, stdout, stderr)."""
    p = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                       env=python_env(), timeout=timeout)
    return p.returncode, p.stdout, p.stderr


class SegmentCase(unittest.TestCase):
    """Each test gets self.cache on a fresh segment self.name, unlinked after."""

    create_kw = dict(max_entries=1024, memory="4M", max_readers=32)

    def setUp(self):
        self.name = unique_name(type(self).__name__[:12])
        self.cache = tickcache.Cache(self.name, create=True, **self.create_kw)
        self.addCleanup(self._cleanup)

    def _cleanup(self):
        try:
            self.cache.close()
        except BufferError:
            pass
        tickcache.unlink(self.name, missing_ok=True)

    @staticmethod
    def wait_child(pid):
        """The exit code of the forked child PID, once it ends."""
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status)

    def in_child(self, fn):
        """Run FN (returning bytes) in a forked child: (its exit code, 0 when FN
        returned, and what FN returned, decoded)."""
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child
            code = 1
            try:
                os.close(r)
                os.write(w, fn())
                code = 0
            finally:
                os._exit(code)
        os.close(w)
        msg = os.read(r, 65536).decode()
        os.close(r)
        return self.wait_child(pid), msg

    def other(self, name=None, **kw):
        """A second segment, unlinked after the test."""
        name = name or unique_name("o")
        c = tickcache.Cache(name, create=True, **(kw or self.create_kw))
        self.addCleanup(lambda: (c.close(), tickcache.unlink(name, missing_ok=True)))
        return c


