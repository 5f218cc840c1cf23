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

    def test_closed_and_dropped_handles_free_their_spare(self):
        # Each handle's get of a key read once leaves a bytes object that
        # nothing of the caller's holds: the spare (_tickcache.c, struct
        # recent).  close() and the handle's deallocation free it; one kept
        # a handle would be a block each round, which no reference count of
        # the caller's objects can show.
        for i in range(5):
            self.cache.set(f"spare-leak:{i}", bytes([65 + i]) * (40 + i))

        def rounds(n):
            for j in range(n):
                c = tickcache.Cache(self.name)
                self.assertEqual(c.get(f"spare-leak:{j % 5}"), bytes([65 + j % 5]) * (40 + j % 5))
                if j % 2:
                    c.close()  # the others go with their last reference
                del c

        rounds(20)
        gc.collect()
        blocks = sys.getallocatedblocks()
        rounds(400)
        gc.collect()
        grown = sys.getallocatedblocks() - blocks
        self.assertLess(grown, 200, f"{grown} blocks more after 400 handles")


if __name__ == "__main__":
    unittest.main()
