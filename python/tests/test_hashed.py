# SPDX-License-Identifier: MIT
"""The key hash a Cache keeps for its owned results (tc_get_hashed) is
never used with another segment: after fork (the child attaches anew, to
a segment re-created under the name, whose seed differs), under
multiprocessing's default start method, with one key object read from two
Caches on two segments, and when the kept slot goes to another key.  A
stale hash would make get return the default for a key that exists."""
import multiprocessing
import os
import unittest

import tickcache
from support import SegmentCase

KEY = "tradecore:market:quote:AAPL"  # one object, the same in every call


def _prime(c, key, n=4):
    # Noted, kept, then owned (each result dropped at once).
    for _ in range(n):
        c.get(key)


def _recreated_worker(cache, name, create_kw, q):
    # The inherited Cache, its kept results of the parent's segment; the
    # name now another segment (another seed) holding KEY.
    try:
        tickcache.unlink(name)
        with tickcache.Cache(name, create=True, **create_kw) as n:
            n.set(KEY, b"s" * 64)
        got = [cache.get(KEY, "DEFAULT") for _ in range(6)]
        q.put(got)
    except Exception as e:  # reported to the parent
        q.put(repr(e))


class TestKeptHash(SegmentCase):
    def test_fork_child_on_a_recreated_segment_finds_the_key(self):
        c = self.cache
        c.set(KEY, b"p" * 64)
        _prime(c, KEY)
        self.assertEqual(c.get(KEY), b"p" * 64)

        def child():
            tickcache.unlink(self.name)
            with tickcache.Cache(self.name, create=True, **self.create_kw) as n:
                n.set(KEY, b"s" * 64)
            return repr([c.get(KEY, "DEFAULT") for _ in range(6)]).encode()

        self.assertEqual(self.in_child(child), (0, repr([b"s" * 64] * 6)))

    def test_multiprocessing_default_start_on_a_recreated_segment(self):
        c = self.cache
        c.set(KEY, b"p" * 64)
        _prime(c, KEY)
        ctx = multiprocessing.get_context()
        q = ctx.Queue()
        p = ctx.Process(target=_recreated_worker, args=(c, self.name, self.create_kw, q))
        p.start()
        got = q.get(timeout=60)
        p.join(60)
        self.assertEqual(p.exitcode, 0)
        self.assertEqual(got, [b"s" * 64] * 6)

    def test_one_key_object_on_two_segments(self):
        a, b = self.cache, self.other()
        a.set(KEY, b"A" * 64)
        b.set(KEY, b"B" * 64)
        for _ in range(20):
            self.assertEqual(a.get(KEY, "DEFAULT"), b"A" * 64)
            self.assertEqual(b.get(KEY, "DEFAULT"), b"B" * 64)
        # A third Cache on A's segment: the same seed, the same answers.
        a2 = tickcache.Cache(self.name)
        self.addCleanup(a2.close)
        for _ in range(10):
            self.assertEqual(a2.get(KEY, "DEFAULT"), b"A" * 64)
            self.assertEqual(b.get(KEY, "DEFAULT"), b"B" * 64)

    def test_a_new_cache_on_a_recreated_name_finds_the_key(self):
        c = self.cache
        c.set(KEY, b"p" * 64)
        _prime(c, KEY)
        c.close()
        tickcache.unlink(self.name)
        self.cache = tickcache.Cache(self.name, create=True, **self.create_kw)
        self.cache.set(KEY, b"s" * 64)
        for _ in range(6):
            self.assertEqual(self.cache.get(KEY, "DEFAULT"), b"s" * 64)

    def test_kept_slots_taken_by_other_keys(self):
        # Many keys of one length, the same value length and (set once
        # each) the same versions in turn: slots and their BYOBJ entries
        # pass from key to key; every get answers its own key's value.
        c = self.cache
        keys = ["tradecore:market:quote:%04d" % i for i in range(64)]
        for k in keys:
            c.set(k, k.encode().ljust(64, b"."))
        for _ in range(6):
            for k in keys:
                self.assertEqual(c.get(k, "DEFAULT"), k.encode().ljust(64, b"."))
        # Equal keys, other objects; then the kept object again.
        for k in keys[:8]:
            twin = "".join(list(k))
            self.assertIsNot(twin, k)
            self.assertEqual(c.get(twin, "DEFAULT"), k.encode().ljust(64, b"."))
            self.assertEqual(c.get(k, "DEFAULT"), k.encode().ljust(64, b"."))
        # A key deleted: the default, not a kept value; set again: found.
        _prime(c, keys[0])
        c.delete(keys[0])
        self.assertEqual(c.get(keys[0], "DEFAULT"), "DEFAULT")
        c.set(keys[0], b"x" * 64)
        self.assertEqual(c.get(keys[0], "DEFAULT"), b"x" * 64)

    def test_keys_of_every_length_class(self):
        c = self.cache
        for n in (1, 5, 8, 9, 13, 16, 17, 27, 32, 33, 40, 200):
            k = ("k%d:" % n + "x" * n)[:n]
            c.set(k, b"v" * 64)
            for _ in range(6):
                self.assertEqual(c.get(k, "DEFAULT"), b"v" * 64)
            kb = k.encode()
            for _ in range(6):
                self.assertEqual(c.get(kb, "DEFAULT"), b"v" * 64)


if __name__ == "__main__":
    unittest.main()
