# SPDX-License-Identifier: MIT
"""No reference or memory leaks in the extension: every call, error paths
included, many times over; the reference counts of the objects passed in
and the interpreter's allocated blocks must come back to where they were."""
import gc
import sys
import tempfile
import unittest

import leakcheck
import tickcache
from support import SegmentCase


class TestLeaks(SegmentCase):
    def exercise(self, rounds, objs):
        # On a handle of its own, closed after: get keeps its recent results
        # (keys and values) until the cache is closed.
        with tickcache.Cache(self.name) as c:
            leakcheck.exercise(c, rounds, objs)

    def test_every_call_keeps_refcounts_and_blocks(self):
        with tempfile.TemporaryDirectory() as tmp:
            objs = leakcheck.make_objs(tmp)
            self.exercise(20, objs)  # warm caches up
            gc.collect()
            refs = {k: sys.getrefcount(v) for k, v in objs.items()}
            blocks = sys.getallocatedblocks()
            self.exercise(300, objs)
            gc.collect()
            grown = sys.getallocatedblocks() - blocks
            self.assertEqual({k: sys.getrefcount(v) for k, v in objs.items()}, refs)
            # One leaked object per call would be thousands of blocks.
            self.assertLess(grown, 300, f"{grown} blocks more after 300 rounds")


if __name__ == "__main__":
    unittest.main()
