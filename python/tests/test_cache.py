# SPDX-License-Identifier: MIT
"""tickcache.Cache: every call, its exact results, and its errors."""
import copy
import errno
import gc
import io
import json
import mmap
import os
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import tickcache
from support import SegmentCase, run_python, tool, unique_name


class TestOpen(unittest.TestCase):
    def test_missing_segment_without_create_raises_error_enoent(self):
        with self.assertRaises(tickcache.Error) as cm:
            tickcache.Cache(unique_name("missing"))
        self.assertIs(type(cm.exception), tickcache.Error)
        self.assertEqual(cm.exception.errno, errno.ENOENT)
        self.assertEqual(cm.exception.code, -errno.ENOENT)
        self.assertIn("No such file or directory", str(cm.exception))
        self.assertIsInstance(cm.exception, OSError)

    def test_invalid_name_is_value_error(self):
        for bad in ("", "-x", "a/b", "x" * 65, "sp ace"):
            with self.assertRaises(ValueError, msg=bad):
                tickcache.Cache(bad, create=True)
        self.assertFalse(tickcache.name_valid("a/b"))
        self.assertTrue(tickcache.name_valid("a.b-c_d"))

    def test_bad_geometry_arguments(self):
        name = unique_name("geo")
        with self.assertRaisesRegex(ValueError, "memory '12X' is not a size"):
            tickcache.Cache(name, create=True, memory="12X")
        with self.assertRaisesRegex(TypeError, "memory must be int bytes"):
            tickcache.Cache(name, create=True, memory=1.5)
        with self.assertRaisesRegex(ValueError, "max_entries must be in 1.."):
            tickcache.Cache(name, create=True, max_entries=0)
        with self.assertRaisesRegex(TypeError, "max_readers must be int or None"):
            tickcache.Cache(name, create=True, max_readers="8")
        with self.assertRaisesRegex(ValueError, 'eviction must be "none" or "lru"'):
            tickcache.Cache(name, create=True, eviction="fifo")
        with self.assertRaisesRegex(ValueError, "default_ttl must not be negative"):
            tickcache.Cache(name, create=True, default_ttl=-1)
        self.assertNotIn(name, tickcache.segments())

    def test_geometry_mismatch_is_geometry_error(self):
        name = unique_name("geo")
        with tickcache.Cache(name, create=True, max_entries=1024, memory="1M"):
            try:
                with self.assertRaises(tickcache.GeometryError) as cm:
                    tickcache.Cache(name, max_entries=2048)
                self.assertEqual(cm.exception.code, tickcache.TC_EGEOMETRY)
                self.assertIsNone(cm.exception.errno)
                self.assertIn(f"segment '{name}'", str(cm.exception))
                # Attaching with the same geometry, or none, works.
                tickcache.Cache(name, max_entries=1024, memory=1 << 20).close()
                tickcache.Cache(name).close()
            finally:
                tickcache.unlink(name)

    def test_create_settings_are_applied(self):
        name = unique_name("opts")
        with tickcache.Cache(name, create=True, max_entries=512, memory="1M", max_readers=8,
                             default_ttl=30, eviction="lru", mode=0o640) as c:
            try:
                info = c.info()
                self.assertEqual(info["name"], name)
                self.assertEqual(info["max_entries"], 512)
                self.assertEqual(info["memory_bytes"], 1 << 20)
                self.assertEqual(info["max_readers"], 8)
                self.assertEqual(info["default_ttl_ms"], 30000)
                self.assertEqual(info["eviction"], "lru")
                self.assertEqual(info["mode"], 0o640)
                self.assertEqual(info["creator_pid"], os.getpid())
                self.assertEqual(os.stat(f"/dev/shm/tickcache.{name}").st_mode & 0o777, 0o640)
                c.set("k", b"v")
                exp = c.get_item("k").expires_at
                self.assertGreater(exp, time.time() + 25)
                self.assertLess(exp, time.time() + 35)
                self.assertIn(name, tickcache.segments())
            finally:
                tickcache.unlink(name)
        self.assertNotIn(name, tickcache.segments())

    def test_memory_suffixes(self):
        for text, size in (("1M", 1 << 20), ("2048K", 2 << 20), ("1MiB", 1 << 20),
                           ("1048576", 1 << 20)):
            name = unique_name("mem")
            with tickcache.Cache(name, create=True, memory=text) as c:
                self.assertEqual(c.info()["memory_bytes"], size, text)
            tickcache.unlink(name)


class TestChecksums(unittest.TestCase):
    """checksum=True: a scribbled value byte raises CorruptError instead of
    being returned (TC_CHECKSUM in the library)."""

    MARK = b"scribble-me:0123456789abcdef0123456789abcdef"

    def scribble_value(self, name):
        with open(f"/dev/shm/tickcache.{name}", "r+b") as f:
            data = f.read()
            at = data.find(self.MARK)
            self.assertGreater(at, 0)
            self.assertEqual(data.find(self.MARK, at + 1), -1)
            f.seek(at + 3)
            f.write(b"X")

    def test_checksummed_segment_detects_a_scribbled_value(self):
        name = unique_name("csum")
        try:
            with tickcache.Cache(name, create=True, max_entries=1024, memory="1M",
                                 checksum=True) as c:
                self.assertIs(c.info()["checksums"], True)
                c.set("k", self.MARK)
                c.set("other", b"intact")
                self.assertEqual(c.get("k"), self.MARK)
                self.assertEqual(c.stats()["checksum_failures"], 0)
                self.scribble_value(name)
                with self.assertRaises(tickcache.CorruptError) as cm:
                    c.get("k")
                self.assertEqual(cm.exception.code, tickcache.TC_ECORRUPT)
                self.assertEqual(c.get("other"), b"intact")
                st = c.stats()
                self.assertIs(st["checksums"], True)
                self.assertEqual(st["checksum_failures"], 1)
        finally:
            tickcache.unlink(name)

    def test_checksummed_segment_detects_a_scribbled_large_value(self):
        # A value over 512 bytes goes straight into its bytes object
        # (tc_get_with's callback); the copy is checked all the same.
        name = unique_name("csumbig")
        big = self.MARK + bytes(range(256)) * 3
        try:
            with tickcache.Cache(name, create=True, max_entries=1024, memory="1M",
                                 checksum=True) as c:
                c.set("k", big)
                self.assertEqual(c.get("k"), big)
                self.scribble_value(name)
                with self.assertRaises(tickcache.CorruptError):
                    c.get("k")
                self.assertEqual(c.stats()["checksum_failures"], 1)
        finally:
            tickcache.unlink(name)

    def test_every_read_raises_for_a_scribbled_value_or_expiry(self):
        # Every call that reads KEY, or answers from it without its value
        # (exists, a wait for its version, a loader that must not run over
        # it), raises CorruptError: a damaged value byte, and an expiry
        # scribbled into the past (a miss before: `in` was False, get()
        # gave the default, get_or_load ran its loader over it).
        for what in ("value", "expiry"):
            name = unique_name("csumall")
            try:
                with tickcache.Cache(name, create=True, max_entries=1024, memory="1M",
                                     checksum=True) as c:
                    c.set("k", self.MARK)
                    if what == "value":
                        self.scribble_value(name)
                    else:  # expires_ms: 16 bytes into the entry, which is
                        # 64 header bytes and the key's 8 before the value
                        with open(f"/dev/shm/tickcache.{name}", "r+b") as f:
                            at = f.read().find(self.MARK)
                            f.seek(at - 72 + 16)
                            f.write(b"\x01")
                    reads = {
                        "get": lambda: c.get("k"),
                        "get_item": lambda: c.get_item("k"),
                        "get_many": lambda: c.get_many(["k"]),
                        "get_json": lambda: c.get_json("k"),
                        "in": lambda: "k" in c,
                        "exists": lambda: c.exists("k"),
                        "wait": lambda: c.wait("k", 0, timeout=0),
                        "get_or_load": lambda: c.get_or_load("k", lambda: b"loaded"),
                    }
                    for call, read in reads.items():
                        with self.subTest(what=what, call=call):
                            with self.assertRaises(tickcache.CorruptError):
                                read()
                    with c.read() as r:
                        with self.assertRaises(tickcache.CorruptError):
                            r.peek("k")
                    self.assertEqual(c.stats()["checksum_failures"], len(reads) + 1)
            finally:
                tickcache.unlink(name)

    def test_a_scribble_under_a_kept_version_returns_the_live_bytes(self):
        # get() keeps the bytes object of a hot key, but the version alone
        # is never trusted: bytes scribbled under the same version are
        # returned as the C tc_get returns them, never the kept object.
        name = unique_name("kept")
        try:
            with tickcache.Cache(name, create=True, max_entries=1024, memory="1M") as c:
                ver = c.set("k", self.MARK)
                c.get("k")  # noted
                kept = c.get("k")  # kept
                self.assertIs(c.get("k"), kept)
                self.scribble_value(name)
                got = c.get("k")
                self.assertEqual(got, self.MARK[:3] + b"X" + self.MARK[4:])
                self.assertEqual(kept, self.MARK)
                self.assertEqual(c.get_item("k").version, ver)
        finally:
            tickcache.unlink(name)

    def test_a_failed_copy_into_the_spare_is_never_returned(self):
        # A key read once goes into the spare (struct recent): a copy
        # that fails its checksum leaves the damaged bytes there; a miss,
        # the next key and the key itself never return them.
        name = unique_name("csumspare")
        good = self.MARK[:3] + b"Y" + self.MARK[4:]
        others = [bytes([97 + i]) * len(self.MARK) for i in range(4)]
        try:
            with tickcache.Cache(name, create=True, max_entries=1024, memory="1M",
                                 checksum=True) as c:
                c.set("k", self.MARK)
                for i, v in enumerate(others):
                    c.set(f"other:{i}", v)
                self.assertEqual(c.get("other:0"), others[0])  # made: the spare
                self.scribble_value(name)
                for i in range(1, len(others)):
                    with self.assertRaises(tickcache.CorruptError):
                        c.get("k")  # into the spare, which then holds damage
                    self.assertIsNone(c.get("missing"))
                    self.assertEqual(c.get("missing", b"d"), b"d")
                    probe = bytearray(1)
                    got = c.get(f"other:{i}")
                    # the spare carried it: its reference, one more than probe's
                    self.assertEqual(sys.getrefcount(got), sys.getrefcount(probe) + 1)
                    self.assertEqual(got, others[i])
                    self.assertEqual(hash(got), hash(others[i]))
                    del got
                c.set("k", good)
                self.assertEqual(c.get("k"), good)
                self.assertEqual(c.stats()["checksum_failures"], len(others) - 1)
        finally:
            tickcache.unlink(name)

    def test_a_failed_copy_into_a_kept_object_is_never_returned(self):
        # A dropped result is written over by the next get (the owned case,
        # see _tickcache.c's struct recent): a copy that fails its checksum
        # leaves the damaged bytes there, and no later get returns them.
        name = unique_name("csumown")
        good = self.MARK[:3] + b"Y" + self.MARK[4:]
        try:
            with tickcache.Cache(name, create=True, max_entries=1024, memory="1M",
                                 checksum=True) as c:
                key = "k"
                c.set(key, self.MARK)
                for _ in range(3):
                    self.assertEqual(c.get(key), self.MARK)
                self.scribble_value(name)
                for _ in range(3):
                    with self.assertRaises(tickcache.CorruptError):
                        c.get(key)
                held = None
                with self.assertRaises(tickcache.CorruptError):
                    held = c.get(key)
                self.assertIsNone(held)
                c.set(key, good)
                for _ in range(3):
                    self.assertEqual(c.get(key), good)
                held = c.get(key)
                self.assertEqual(c.get(key), good)
                self.assertEqual(held, good)
                self.assertEqual(c.stats()["checksum_failures"], 4)
        finally:
            tickcache.unlink(name)

    def test_without_checksums_a_scribbled_value_is_returned(self):
        name = unique_name("nocsum")
        try:
            with tickcache.Cache(name, create=True, max_entries=1024, memory="1M") as c:
                self.assertIs(c.info()["checksums"], False)
                c.set("k", self.MARK)
                self.scribble_value(name)
                self.assertEqual(c.get("k"), self.MARK[:3] + b"X" + self.MARK[4:])
                with self.assertRaises(tickcache.GeometryError):
                    tickcache.Cache(name, checksum=True)
        finally:
            tickcache.unlink(name)

    @staticmethod
    def kept_slot(key, version):
        # _tickcache.c's recent_slot() for an exact str KEY of 8 or more
        # ASCII bytes: the slot a result of KEY at VERSION is kept in.
        tail = int.from_bytes(key.encode()[-8:], "little")
        return (((version ^ tail) * 0x9E3779B97F4A7C15) & (2**64 - 1)) >> 60

    def scribble_version_to_zero(self, name, key, version):
        # The live entry of KEY (its header: 64 bytes before the key's
        # bytes; version at +8, klen at +32) gets version 0.
        kb, found = key.encode(), 0
        with open(f"/dev/shm/tickcache.{name}", "r+b") as f, \
                mmap.mmap(f.fileno(), 0) as m:
            at = m.find(kb)
            while at >= 0:
                h = at - 64
                if (struct.unpack_from("<Q", m, h + 8)[0] == version and
                        struct.unpack_from("<H", m, h + 32)[0] == len(kb)):
                    m[h + 8:h + 16] = bytes(8)
                    found += 1
                at = m.find(kb, at + 1)
        self.assertEqual(found, 1)

    def test_a_kept_object_a_shorter_value_went_into_never_keeps_the_old_hash(self):
        # A shorter value copied into a dropped result (the owned case)
        # changes its first bytes and is not returned in it; the object
        # stays kept with version 0 ("not a value").  A live version
        # scribbled to 0, whose bytes are exactly that object's now, finds
        # it by content (shared): it must come back with the hash of those
        # bytes, not the one cached for the bytes it held before.
        name = unique_name("ver0")
        full, short = b"A" * 64, b"B" * 10
        mixed = short + full[10:]
        try:
            with tickcache.Cache(name, create=True, max_entries=1024, memory="1M") as c:
                # A key whose kept slot at its first version is the one
                # that version 0 looks in.
                for i in range(10000):
                    key = f"tradecore:ver0:{i:05d}"
                    ver = c.set(key, full)
                    if self.kept_slot(key, ver) == self.kept_slot(key, 0):
                        break
                else:
                    self.fail("no key shares its kept slot with version 0")
                for _ in range(3):
                    self.assertEqual(c.get(key), full)
                v = c.get(key)
                kept = id(v)
                self.assertEqual(hash(v), hash(full))  # cached in the object
                del v
                c.set(key, short)
                self.assertEqual(c.get(key), short)  # copied into the kept object
                self.scribble_version_to_zero(name, key, c.set(key, mixed))
                got = c.get(key.encode())  # another key object: not owned
                self.assertEqual(c.get_item(key).version, 0)
                self.assertEqual(id(got), kept)  # the shared case ran
                self.assertEqual(got, mixed)
                self.assertEqual(hash(got), hash(mixed))
                self.assertIn(got, {mixed})
        finally:
            tickcache.unlink(name)


class TestReadsAndWrites(SegmentCase):
    def test_set_get_roundtrip_and_default(self):
        c = self.cache
        self.assertEqual(c.set("a", b"one"), 1)
        self.assertEqual(c.get("a"), b"one")
        self.assertIs(type(c.get("a")), bytes)
        self.assertIsNone(c.get("missing"))
        sentinel = object()
        self.assertIs(c.get("missing", sentinel), sentinel)
        self.assertIs(c.get("missing", default=sentinel), sentinel)
        self.assertEqual(c.get(key="a"), b"one")
        self.assertEqual(c.set("a", b"two"), 2)
        self.assertEqual(c.get("a"), b"two")

    def test_keys_and_values_bytes_like(self):
        c = self.cache
        c.set(b"bk", bytearray(b"ba"))
        c.set(bytearray(b"bak"), memoryview(b"mv"))
        c.set(memoryview(b"mvk"), b"")
        self.assertEqual(c.get("bk"), b"ba")
        self.assertEqual(c.get(b"bak"), b"mv")
        self.assertEqual(c.get("mvk"), b"")
        # str keys are UTF-8.
        c.set("ключ", b"x")
        self.assertEqual(c.get("ключ".encode()), b"x")

    def test_large_values_roundtrip(self):
        c = self.cache
        for n in (511, 512, 513, 4096, 100_000):
            v = os.urandom(n)
            c.set("big", v)
            self.assertEqual(c.get("big"), v, n)
        v = bytes(range(256)) * (tickcache.VALUE_MAX // 256)
        self.assertEqual(len(v), tickcache.VALUE_MAX)
        c.set("max", v)
        self.assertEqual(c.get("max"), v)

    def test_limits_name_both_sizes(self):
        c = self.cache
        with self.assertRaises(ValueError) as cm:
            c.set("k" * 600, b"v")
        self.assertEqual(str(cm.exception), "key is 600 bytes; the limit is 512")
        with self.assertRaises(ValueError) as cm:
            c.get("k" * 513)
        self.assertEqual(str(cm.exception), "key is 513 bytes; the limit is 512")
        with self.assertRaises(ValueError) as cm:
            c.set("k", b"x" * (tickcache.VALUE_MAX + 1))
        self.assertEqual(str(cm.exception), "value is 1048577 bytes; the limit is 1048576")
        with self.assertRaises(ValueError) as cm:
            c.get("")
        self.assertEqual(str(cm.exception), "key is empty")
        c.set("k" * 512, b"ok")
        self.assertEqual(c.get("k" * 512), b"ok")

    def test_bad_types(self):
        c = self.cache
        with self.assertRaisesRegex(TypeError, "key must be str or bytes-like, not int"):
            c.get(5)
        with self.assertRaisesRegex(TypeError, "key must be str or bytes-like, not NoneType"):
            c.set(None, b"v")
        with self.assertRaisesRegex(TypeError, r"value must be bytes-like, not str \(encode"):
            c.set("k", "text")
        with self.assertRaisesRegex(TypeError, "value must be bytes-like, not int"):
            c.add("k", 5)
        with self.assertRaisesRegex(TypeError, "ttl must be int or float seconds or None"):
            c.set("k", b"v", ttl="5")
        with self.assertRaisesRegex(ValueError, "type must be in 0..4294967295, got -1"):
            c.set("k", b"v", type=-1)
        with self.assertRaisesRegex(TypeError, "type must be int, not float"):
            c.set("k", b"v", type=1.0)
        with self.assertRaisesRegex(TypeError, "version must be int, not str"):
            c.cas("k", b"v", "1")
        with self.assertRaisesRegex(TypeError, "delta must be int, not float"):
            c.incr("n", 1.5)
        with self.assertRaisesRegex(TypeError, r"get\(\) got an unexpected keyword argument 'dflt'"):
            c.get("k", dflt=1)
        with self.assertRaisesRegex(TypeError, r"set\(\) missing required argument 'value'"):
            c.set("k")
        with self.assertRaisesRegex(TypeError, r"set\(\) got multiple values for argument 'ttl'"):
            c.set("k", b"v", 1, ttl=2)
        with self.assertRaisesRegex(TypeError, "pattern must be str or bytes, not int"):
            c.keys(5)
        with self.assertRaisesRegex(ValueError, "pattern contains a NUL character"):
            c.purge("a\0b")
        with self.assertRaises(UnicodeEncodeError):
            c.get("\udcff")
        self.assertEqual(c.keys(), [])

    def test_negative_and_odd_ttls(self):
        c = self.cache
        for bad in (-1, -0.5, float("-inf")):
            with self.assertRaisesRegex(ValueError, "ttl must not be negative"):
                c.set("k", b"v", ttl=bad)
        with self.assertRaisesRegex(ValueError, "ttl is NaN"):
            c.set("k", b"v", ttl=float("nan"))
        with self.assertRaisesRegex(ValueError, "too large"):
            c.set("k", b"v", ttl=float("inf"))
        with self.assertRaisesRegex(ValueError, "too large"):
            c.set("k", b"v", ttl=10 ** 30)
        with self.assertRaisesRegex(ValueError, "ttl must not be negative"):
            c.expire("k", -1)
        with self.assertRaisesRegex(TypeError, "ttl must be a number of seconds, not None"):
            c.expire("k", None)
        with self.assertRaisesRegex(ValueError, "ttl must not be negative"):
            c.incr("n", ttl=-3)
        self.assertEqual(c.keys(), [])

    def test_ttl_zero_never_expires_and_none_uses_default(self):
        c = self.cache
        c.set("forever", b"v", ttl=0)
        self.assertIsNone(c.get_item("forever").expires_at)
        c.set("default", b"v")  # segment default: never
        self.assertIsNone(c.get_item("default").expires_at)
        t0 = time.time()
        c.set("ten", b"v", ttl=10)
        exp = c.get_item("ten").expires_at
        self.assertGreaterEqual(exp, t0 + 9.9)
        self.assertLessEqual(exp, time.time() + 10.1)

    def test_short_ttl_expires(self):
        c = self.cache
        c.set("short", b"v", ttl=0.05)  # 50 ms
        c.set("tiny", b"v", ttl=1e-9)   # rounds up to 1 ms, never to "forever"
        self.assertIsNotNone(c.get_item("tiny").expires_at)
        time.sleep(0.3)
        self.assertIsNone(c.get("short"))
        self.assertIsNone(c.get("tiny"))
        self.assertFalse(c.exists("short"))

    def test_get_item_fields(self):
        c = self.cache
        v0 = c.set("k", b"old")
        v1 = c.set("k", b"val", type=7)
        self.assertGreater(v1, v0)
        it = c.get_item("k")
        self.assertIsInstance(it, tickcache.Item)
        self.assertEqual(it.value, b"val")
        self.assertEqual(it.type, 7)
        self.assertEqual(it.version, v1)
        self.assertIsNone(it.expires_at)
        self.assertEqual(tuple(it), (b"val", 7, v1, None))
        self.assertIsNone(c.get_item("nope"))

    def test_get_many(self):
        c = self.cache
        c.set("a", b"1")
        c.set("c", b"3")
        self.assertEqual(c.get_many(["a", "b", "c"]), [b"1", None, b"3"])
        self.assertEqual(c.get_many(k for k in ("c", "a")), [b"3", b"1"])
        self.assertEqual(c.get_many([]), [])
        with self.assertRaisesRegex(TypeError, "key must be str or bytes-like, not int"):
            c.get_many(["a", 3])
        # More keys than one chunk of the C call (16), bytes-like keys too,
        # values longer than the stack buffer of get().
        big = bytes(range(256)) * 300
        for i in range(40):
            c.set("m%d" % i, big[:i * 1000])
        keys = ["m%d" % i if i % 5 else b"x%d" % i for i in range(40)]
        want = [big[:i * 1000] if i % 5 else None for i in range(40)]
        self.assertEqual(c.get_many(keys), want)
        self.assertEqual(c.get_many([bytearray(b"m7"), memoryview(b"m8")]),
                         [big[:7000], big[:8000]])

    def test_add(self):
        c = self.cache
        self.assertIs(c.add("k", b"first"), True)
        self.assertIs(c.add("k", b"second"), False)
        self.assertEqual(c.get("k"), b"first")
        c.delete("k")
        self.assertIs(c.add("k", b"third", ttl=60), True)
        self.assertEqual(c.get("k"), b"third")

    def test_cas(self):
        c = self.cache
        self.assertIs(c.cas("k", b"x", 1), False)  # missing
        v = c.set("k", b"a")
        self.assertIs(c.cas("k", b"b", v + 100), False)
        self.assertEqual(c.get("k"), b"a")
        self.assertIs(c.cas("k", b"b", v), True)
        self.assertEqual(c.get("k"), b"b")
        self.assertIs(c.cas("k", b"c", v), False)
        v2 = c.get_item("k").version
        self.assertGreater(v2, v)
        self.assertIs(c.cas("k", b"c", version=v2, ttl=60, type=3), True)
        self.assertEqual(c.get_item("k").type, 3)

    def test_get_returns_the_recent_object_only_for_the_live_version(self):
        c = self.cache
        writer = tickcache.Cache(self.name)
        self.addCleanup(writer.close)
        c.set("quote", b"AAPL 101")
        self.assertEqual(c.get("quote"), b"AAPL 101")  # noted
        first = c.get("quote")  # kept
        self.assertEqual(first, b"AAPL 101")
        # Unchanged (same version): the same bytes object, also for an
        # equal key built anew and for the key's UTF-8 as bytes.
        self.assertIs(c.get("quote"), first)
        self.assertIs(c.get("".join(["quo", "te"])), first)
        self.assertIs(c.get(b"quote"), first)
        self.assertIs(c.get_item("quote").value, first)
        # Another handle writes the same length: a new version, a new value.
        writer.set("quote", b"AAPL 102")
        self.assertEqual(c.get("quote"), b"AAPL 102")
        self.assertEqual(c.get("quote"), b"AAPL 102")
        # The same bytes again are a new version too; an equal value.
        writer.set("quote", b"AAPL 102")
        self.assertEqual(c.get("quote"), b"AAPL 102")
        self.assertEqual(c.get("quote"), b"AAPL 102")
        # A delete and a re-add with the first value.
        writer.delete("quote")
        self.assertIsNone(c.get("quote"))
        writer.set("quote", b"AAPL 101")
        self.assertEqual(c.get("quote"), b"AAPL 101")
        self.assertIsNot(c.get("quote"), first)
        # A bytes-like key that can change is read, never remembered.
        k = bytearray(b"quote")
        self.assertEqual(c.get(k), b"AAPL 101")
        self.assertEqual(c.get(k), b"AAPL 101")
        k[0:1] = b"Q"
        writer.set(bytes(k), b"other")
        self.assertEqual(c.get(k), b"other")
        # Keys that differ after the first bytes never share a result.
        c.set("quote2", b"AAPL 101")
        for _ in range(2):
            self.assertEqual(c.get("quote2"), b"AAPL 101")
            self.assertEqual(c.get("quote"), b"AAPL 101")

    def _prime(self, c, key, n=3):
        # Noted, kept, then (the results dropped) the kept object is the
        # slot's alone: the next get copies into it (struct recent, owned).
        for _ in range(n):
            c.get(key)

    def test_a_result_someone_holds_is_never_written(self):
        # get writes into a kept bytes object only while the kept results
        # alone reference it: a result held by a variable, a container, a
        # memoryview or a dict key keeps its bytes, and the new value comes
        # in another object.
        c = self.cache
        writer = tickcache.Cache(self.name)
        self.addCleanup(writer.close)
        holders = {
            "variable": (lambda b: b, lambda h: h),
            "list": (lambda b: [b], lambda h: h[0]),
            "memoryview": (memoryview, lambda h: h.tobytes()),
            "dict key": (lambda b: {b: 1}, lambda h: next(iter(h))),
        }
        for i, (how, (hold, read)) in enumerate(holders.items()):
            with self.subTest(holder=how):
                key = f"held:{i}"
                old, new = bytes([65 + i]) * 64, bytes([97 + i]) * 64
                c.set(key, old)
                self._prime(c, key)
                h = hold(c.get(key))
                writer.set(key, new)
                self.assertEqual(c.get(key), new)
                self.assertEqual(c.get(key), new)
                self.assertEqual(read(h), old)
                self.assertEqual(hash(read(h)), hash(old))

    def test_a_dropped_result_is_rewritten_with_the_live_value(self):
        # The owned case: the same object comes back with the new bytes and
        # their hash, never the hash cached for the old ones.
        c = self.cache
        writer = tickcache.Cache(self.name)
        self.addCleanup(writer.close)
        key = "tradecore:market:quote:AAPL"
        old, new = b"o" * 64, b"n" * 64
        c.set(key, old)
        self._prime(c, key)
        self.assertEqual(hash(c.get(key)), hash(old))  # cached in the object
        kept = id(c.get(key))
        writer.set(key, new)
        got = c.get(key)
        self.assertEqual(id(got), kept)  # written in place: the owned case ran
        self.assertEqual(got, new)
        self.assertEqual(hash(got), hash(new))
        self.assertIn(got, {new})
        del got
        self.assertEqual(c.get(key), new)
        self.assertEqual(c.get_item(key).value, new)

    def test_a_kept_object_of_another_length_is_never_returned(self):
        # The live value shorter or longer than the kept object (over the
        # stack's 512 bytes too): the exact bytes, never the kept object's
        # length or its old tail.
        c = self.cache
        writer = tickcache.Cache(self.name)
        self.addCleanup(writer.close)
        key = "quote"
        values = [bytes(range(64)), b"short", bytes(range(64)),
                  bytes(range(100, 200)), b"x" * 600, bytes(range(200, 232)) * 2,
                  b"", b"y", bytes(range(64))]
        for i, v in enumerate(values):
            with self.subTest(step=i, length=len(v)):
                writer.set(key, v)
                for _ in range(4):
                    self.assertEqual(c.get(key), v)
                self.assertEqual(c.get(b"quote"), v)

    def test_a_dropped_result_carries_the_next_keys_value(self):
        # Keys read once each (no kept slot): the result of one, once
        # dropped, is the spare (struct recent), and the next key's value
        # is written into it, with the hash of its new bytes.
        c = self.cache
        vals = [bytes([65 + i]) * 64 for i in range(6)]
        for i, v in enumerate(vals):
            c.set(f"spare:{i}", v)
        got = c.get("spare:0")
        self.assertEqual(hash(got), hash(vals[0]))  # cached in the object
        del got
        for i in range(1, len(vals)):
            probe = bytearray(1)  # a local held once, counted the same way
            got = c.get(f"spare:{i}")
            # One reference more than a local held once, the spare's: the
            # value went into the spare.
            self.assertEqual(sys.getrefcount(got), sys.getrefcount(probe) + 1)
            self.assertEqual(got, vals[i])
            self.assertEqual(hash(got), hash(vals[i]))
            self.assertIn(got, {vals[i]})
            del got
        self.assertIsNone(c.get("spare:missing"))
        self.assertEqual(c.get("spare:missing", b"dflt"), b"dflt")
        self.assertEqual(c.get("spare:3"), vals[3])

    def test_a_held_result_of_another_key_is_never_written(self):
        # The spare is written only while nothing but the cache holds it:
        # a result held by a variable, a container, a memoryview, a dict
        # key or an Item keeps its bytes and hash while other keys are read.
        c = self.cache
        holders = {
            "variable": (lambda b: b, lambda h: h),
            "list": (lambda b: [b], lambda h: h[0]),
            "memoryview": (memoryview, lambda h: h.tobytes()),
            "dict key": (lambda b: {b: 1}, lambda h: next(iter(h))),
            "bytes()": (bytes, lambda h: h),
            "BytesIO": (io.BytesIO, lambda h: h.getvalue()),
        }
        others = [f"other:{j}" for j in range(4)]
        for j, k in enumerate(others):
            c.set(k, bytes([97 + j]) * 64)
        for i, (how, (hold, read)) in enumerate(holders.items()):
            with self.subTest(holder=how):
                key, old = f"held-spare:{i}", bytes([65 + i]) * 64
                c.set(key, old)
                v = c.get(key)
                hash(v)
                h = hold(v)
                del v
                for _ in range(3):
                    for j, k in enumerate(others):
                        self.assertEqual(c.get(k), bytes([97 + j]) * 64)
                got = read(h)
                self.assertEqual(got, old)
                self.assertEqual(hash(got), hash(old))
        c.set("held-spare:item", b"I" * 64)
        item = c.get_item("held-spare:item")
        for j, k in enumerate(others):
            self.assertEqual(c.get(k), bytes([97 + j]) * 64)
            self.assertEqual(c.get_item(k).value, bytes([97 + j]) * 64)
        self.assertEqual(item.value, b"I" * 64)

    def test_results_kept_in_a_list_keep_their_values(self):
        # Every result held at once: none is written by the next get.
        c = self.cache
        writer = tickcache.Cache(self.name)
        self.addCleanup(writer.close)
        keys = [f"listed:{i:03d}" for i in range(50)]
        for round_ in range(3):
            for i, k in enumerate(keys):
                writer.set(k, b"%03d:%03d:" % (round_, i) + b"v" * 56)
            got = [c.get(k) for k in keys]
            again = [c.get(k) for k in keys]
            want = [b"%03d:%03d:" % (round_, i) + b"v" * 56 for i in range(len(keys))]
            self.assertEqual(got, want)
            self.assertEqual(again, want)
            self.assertEqual([hash(g) for g in got], [hash(w) for w in want])

    def test_values_of_every_length_through_the_spare(self):
        # The spare has the length of the last result made: values shorter,
        # longer (over the stack's 512 bytes too) and empty come back exact,
        # whichever object carries them.
        c = self.cache
        lengths = [64, 5, 0, 600, 512, 64, 513, 1, 64, 511, 64]
        for i, n in enumerate(lengths):
            c.set(f"len:{i}", bytes((i * 7 + j) % 251 for j in range(n)))
        for _ in range(3):
            for i, n in enumerate(lengths):
                with self.subTest(key=i, length=n):
                    want = bytes((i * 7 + j) % 251 for j in range(n))
                    got = c.get(f"len:{i}")
                    self.assertEqual(got, want)
                    self.assertEqual(hash(got), hash(want))
                    del got

    def test_many_keys_read_in_turn_get_their_own_values(self):
        # More key objects than kept slots, one value length: objects are
        # found by the key object's identity, so a slot another key took
        # over never answers for this one.
        c = self.cache
        writer = tickcache.Cache(self.name)
        self.addCleanup(writer.close)
        keys = [f"tradecore:market:quote:S{i:03d}" for i in range(40)]
        for round_ in range(4):
            for i, k in enumerate(keys):
                writer.set(k, b"%03d:%03d:" % (round_, i) + b"v" * 56)
            for _ in range(3):
                for i, k in enumerate(keys):
                    self.assertEqual(c.get(k), b"%03d:%03d:" % (round_, i) + b"v" * 56)
                    self.assertEqual(c.get(k), b"%03d:%03d:" % (round_, i) + b"v" * 56)

    def test_a_result_the_builtins_share_is_never_written(self):
        # Copies that are no copies: b[:], bytes(b), b"".join([b]),
        # copy.copy and copy.deepcopy return B itself, io.BytesIO(b) keeps
        # B as its buffer (and getvalue() returns it), an iterator, a
        # frozenset, a tuple and an Item hold it.  Each is counted
        # in B's reference count, so B keeps its bytes and its hash while a
        # new value comes in another object.
        c = self.cache
        writer = tickcache.Cache(self.name)
        self.addCleanup(writer.close)
        holders = {
            "full slice": (lambda b: b[:], lambda h: h),
            "bytes()": (bytes, lambda h: h),
            "join": (lambda b: b"".join([b]), lambda h: h),
            "copy.copy": (copy.copy, lambda h: h),
            "copy.deepcopy": (copy.deepcopy, lambda h: h),
            "BytesIO": (io.BytesIO, lambda h: h.getvalue()),
            "BytesIO.getvalue": (lambda b: io.BytesIO(b).getvalue(), lambda h: h),
            "iterator": (iter, lambda h: bytes(list(h))),
            "frozenset": (lambda b: frozenset([b]), lambda h: next(iter(h))),
            "tuple": (lambda b: (b,), lambda h: h[0]),
        }
        for i, (how, (hold, read)) in enumerate(holders.items()):
            with self.subTest(holder=how):
                key = f"shared:{i}"
                old, new = bytes([65 + i]) * 48, bytes([97 + i]) * 48
                writer.set(key, old)
                self._prime(c, key)
                v = c.get(key)
                hash(v)
                h = hold(v)
                if how != "iterator":
                    self.assertIs(read(h), v)  # the holder has B itself
                del v
                writer.set(key, new)
                for _ in range(3):
                    self.assertEqual(c.get(key), new)
                got = read(h)
                self.assertEqual(got, old)
                self.assertEqual(hash(got), hash(old))
                self.assertIn(got, {old})
        key = "shared:item"
        writer.set(key, b"I" * 48)
        self._prime(c, key)
        item = c.get_item(key)
        writer.set(key, b"i" * 48)
        for _ in range(3):
            self.assertEqual(c.get(key), b"i" * 48)
            self.assertEqual(c.get_item(key).value, b"i" * 48)
        self.assertEqual(item.value, b"I" * 48)

    def test_versions_grow_across_delete(self):
        c = self.cache
        v1 = c.set("k", b"a")
        self.assertTrue(c.delete("k"))
        v2 = c.set("k", b"a")
        self.assertGreater(v2, v1)

    def test_delete_exists_contains(self):
        c = self.cache
        c.set("k", b"v")
        self.assertIs(c.exists("k"), True)
        self.assertIn("k", c)
        self.assertIn(b"k", c)
        self.assertIs(c.delete("k"), True)
        self.assertIs(c.delete("k"), False)
        self.assertIs(c.exists("k"), False)
        self.assertNotIn("k", c)
        with self.assertRaises(TypeError):
            5 in c

    def test_expire(self):
        c = self.cache
        self.assertIs(c.expire("missing", 10), False)
        v = c.set("k", b"v")
        self.assertIs(c.expire("k", 100), True)
        it = c.get_item("k")
        self.assertEqual(it.value, b"v")
        self.assertGreater(it.version, v)
        self.assertGreater(it.expires_at, time.time() + 90)
        self.assertIs(c.expire("k", 0), True)
        self.assertIsNone(c.get_item("k").expires_at)

    def test_incr(self):
        c = self.cache
        self.assertEqual(c.incr("n"), 1)
        self.assertEqual(c.incr("n", 10), 11)
        self.assertEqual(c.incr("n", delta=-20), -9)
        self.assertEqual(c.get_item("n").type, tickcache.TYPE_COUNTER)
        self.assertEqual(c.get("n"), (-9).to_bytes(8, "little", signed=True))
        self.assertEqual(c.incr("w", 2 ** 63 - 1), 2 ** 63 - 1)
        self.assertEqual(c.incr("w"), -(2 ** 63))  # wraps like int64
        with self.assertRaisesRegex(ValueError, "delta must fit in int64"):
            c.incr("n", 2 ** 63)
        c.set("s", b"text")
        with self.assertRaises(tickcache.Error) as cm:
            c.incr("s")
        self.assertEqual(cm.exception.code, tickcache.TC_ETYPE)
        self.assertIn("stored value has another type (segment", str(cm.exception))
        c.incr("t", ttl=50)
        self.assertGreater(c.get_item("t").expires_at, time.time() + 40)

    def test_keys_scan_purge(self):
        c = self.cache
        for k in ("a:1", "a:2", "b:1"):
            c.set(k, b"v")
        c.set(b"a:\xff", b"v")
        self.assertEqual(sorted(c.keys("a:[0-9]")), ["a:1", "a:2"])
        allk = c.keys()
        self.assertEqual(sorted(k for k in allk if isinstance(k, str)), ["a:1", "a:2", "b:1"])
        self.assertIn(b"a:\xff", allk)
        self.assertEqual(len(allk), 4)
        it = c.scan("b:*")
        self.assertEqual(iter(it), it)
        self.assertEqual(list(it), ["b:1"])
        self.assertEqual(sorted(c.keys(pattern=b"a:*"), key=repr), sorted(["a:1", "a:2", b"a:\xff"], key=repr))
        self.assertEqual(c.purge("a:*"), 3)
        self.assertEqual(c.keys(), ["b:1"])
        self.assertEqual(c.purge("zzz*"), 0)
        self.assertEqual(c.purge("*"), 1)
        self.assertEqual(c.keys(), [])

    def test_rate_limit(self):
        c = self.cache
        window = 3600
        for _ in range(3):  # retry if an hour boundary passes meanwhile
            w0 = int(time.time()) // window
            got = [c.rate_limit("api:user1", 2, window) for _ in range(3)]
            if int(time.time()) // window == w0:
                break
        self.assertEqual(got, [(True, 1), (True, 2), (False, 3)])
        self.assertEqual(c.rate_limit("api:user2", limit=1, window=window)[0], True)
        self.assertIsNone(c.get("api:user1"))  # a namespace of its own
        with self.assertRaisesRegex(ValueError, "limit must be at least 1"):
            c.rate_limit("k", 0, 1)
        with self.assertRaisesRegex(ValueError, "window must be positive"):
            c.rate_limit("k", 1, 0)
        with self.assertRaisesRegex(ValueError, "window must not be negative"):
            c.rate_limit("k", 1, -1)

    def test_json(self):
        c = self.cache
        obj = {"symbol": "AAPL", "bid": 189.5, "sizes": [1, 2], "ok": True, "none": None}
        c.set_json("q", obj, ttl=5)
        self.assertEqual(c.get_json("q"), obj)
        self.assertEqual(c.get_item("q").type, tickcache.TYPE_JSON)
        self.assertEqual(json.loads(c.get("q")), obj)
        self.assertIsNone(c.get_json("missing"))
        self.assertEqual(c.get_json("missing", {"d": 1}), {"d": 1})
        c.set("bad", b"\xff not json")
        with self.assertRaisesRegex(ValueError, "value is not JSON"):
            c.get_json("bad")
        with self.assertRaises(TypeError):
            c.set_json("x", object())


class TestErrors(SegmentCase):
    def test_full_error_under_eviction_none(self):
        c = self.other(max_entries=64, memory="64K", max_readers=4)
        with self.assertRaises(tickcache.FullError) as cm:
            for i in range(10000):
                c.set(f"k{i}", b"x" * 1000)
        e = cm.exception
        self.assertEqual(e.code, -errno.ENOSPC)
        self.assertEqual(e.errno, errno.ENOSPC)
        self.assertIsInstance(e, tickcache.Error)
        self.assertRegex(str(e), r"No space left on device \(segment '[^']+', key 'k\d+'\)")

    def test_stale_error_after_unlink_also_from_get(self):
        c = self.cache
        c.set("k", b"v")
        tickcache.unlink(self.name)
        with self.assertRaises(tickcache.StaleError) as cm:
            c.get("k")
        self.assertEqual(cm.exception.code, -errno.ESTALE)
        self.assertEqual(cm.exception.errno, errno.ESTALE)
        self.assertIn(f"segment '{self.name}', key 'k'", str(cm.exception))
        with self.assertRaises(tickcache.StaleError):
            c.get("other", b"default")
        with self.assertRaises(tickcache.StaleError):
            c.set("k", b"v")
        with self.assertRaises(tickcache.StaleError):
            c.get_many(["k", "other"])

    def test_unlink_missing(self):
        name = unique_name("gone")
        with self.assertRaises(tickcache.Error) as cm:
            tickcache.unlink(name)
        self.assertEqual(cm.exception.errno, errno.ENOENT)
        self.assertIsNone(tickcache.unlink(name, missing_ok=True))
        with self.assertRaises(ValueError):
            tickcache.unlink("bad/name")

    def test_busy_error_from_a_second_run(self):
        c = self.cache
        c._run_start(1, 1)
        with self.assertRaises(tickcache.BusyError) as cm:
            c._run_start(2, 2)
        self.assertEqual(cm.exception.code, -errno.EBUSY)
        self.assertTrue(c._run_end())
        self.assertFalse(c._run_end())

    def test_corrupt_snapshot_is_corrupt_error(self):
        c = self.cache
        c.set("k", b"v")
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "snap")
            c.save(path)
            with open(path, "r+b") as f:
                f.seek(-3, os.SEEK_END)
                f.write(b"\x00\x01\x02")
            with self.assertRaises(tickcache.CorruptError) as cm:
                c.load(path, replace=True)
            self.assertEqual(cm.exception.code, tickcache.TC_ECORRUPT)

    def test_exception_hierarchy(self):
        for cls in (tickcache.CorruptError, tickcache.GeometryError, tickcache.StaleError,
                    tickcache.FullError, tickcache.BusyError,
                    tickcache.CacheNotConfiguredError, tickcache.InvalidDTOTypeError):
            self.assertTrue(issubclass(cls, tickcache.Error), cls)
        self.assertTrue(issubclass(tickcache.Error, OSError))
        self.assertTrue(issubclass(tickcache.InvalidDTOTypeError, TypeError))
        self.assertEqual(tickcache.strerror(tickcache.TC_ENORUN), "no run is active")
        self.assertEqual(tickcache.strerror(-errno.ENOSPC), "No space left on device")

    def test_closed_cache(self):
        c = self.cache
        c.set("k", b"v")
        self.assertFalse(c.closed)
        c.close()
        c.close()  # twice is fine
        self.assertTrue(c.closed)
        for call in (lambda: c.get("k"), lambda: c.set("k", b"v"), lambda: "k" in c,
                     lambda: c.keys(), lambda: c.stats(), lambda: c.read(),
                     lambda: c.get_or_load("k", lambda: b"x")):
            with self.assertRaises(ValueError) as cm:
                call()
            self.assertEqual(str(cm.exception), f"cache '{self.name}' is closed")
        self.assertEqual(repr(c), f"<tickcache.Cache '{self.name}' closed>")

    def test_context_manager_closes(self):
        with tickcache.Cache(self.name) as c2:
            self.assertEqual(repr(c2), f"<tickcache.Cache '{self.name}' open>")
            c2.set("x", b"1")
        self.assertTrue(c2.closed)
        self.assertEqual(self.cache.get("x"), b"1")

    def test_uninitialised_cache(self):
        c = tickcache.Cache.__new__(tickcache.Cache)
        with self.assertRaisesRegex(ValueError, "cache is not open"):
            c.get("k")
        c.close()


class TestTTLPolicies(SegmentCase):
    def test_set_list_delete(self):
        c = self.cache
        c.ttl_policy("market:quote:", 5)
        c.ttl_policy("session:", 7200.5)
        self.assertEqual(c.ttl_policies(), {"market:quote:": 5.0, "session:": 7200.5})
        c.set("market:quote:AAPL", b"1")
        exp = c.get_item("market:quote:AAPL").expires_at
        self.assertGreater(exp, time.time() + 4)
        self.assertLess(exp, time.time() + 6)
        c.set("market:quote:MSFT", b"1", ttl=0)  # explicit TTLs win
        self.assertIsNone(c.get_item("market:quote:MSFT").expires_at)
        c.ttl_policy("session:", None)
        c.ttl_policy("never-set:", None)
        self.assertEqual(c.ttl_policies(), {"market:quote:": 5.0})
        with self.assertRaisesRegex(ValueError, "prefix is 0 bytes"):
            c.ttl_policy("", 5)
        with self.assertRaisesRegex(TypeError, "prefix must be str"):
            c.ttl_policy(b"x", 5)
        with self.assertRaisesRegex(ValueError, "ttl must not be negative"):
            c.ttl_policy("x:", -5)

    def test_load_file(self):
        c = self.cache
        with tempfile.TemporaryDirectory() as d:
            good = os.path.join(d, "ttl.conf")
            with open(good, "w") as f:
                f.write("# defaults\nmarket:bar: = 60000\n\norder:status: = 300000 # 5 min\n")
            self.assertIsNone(c.load_ttl_policies(good))
            self.assertEqual(c.ttl_policies(), {"market:bar:": 60.0, "order:status:": 300.0})
            bad = os.path.join(d, "bad.conf")
            with open(bad, "w") as f:
                f.write("a: = 1000\nthis is wrong\n")
            with self.assertRaises(ValueError) as cm:
                c.load_ttl_policies(bad)
            self.assertEqual(str(cm.exception),
                             f"{bad!r}, line 2: not a TTL policy line \"prefix = ttl_ms\"")
            self.assertNotIn("a:", c.ttl_policies())  # nothing of the file applied
            with self.assertRaises(FileNotFoundError) as cm:
                c.load_ttl_policies(os.path.join(d, "missing"))
            self.assertEqual(cm.exception.filename, os.path.join(d, "missing"))


class TestStatsAndSnapshots(SegmentCase):
    def test_stats_counts(self):
        c = self.cache
        c.set("a", b"1")
        c.get("a")
        c.get("b")
        c.add("a", b"2")
        c.delete("a")
        st = c.stats()
        self.assertEqual(st["name"], self.name)
        # set() learns its version from tc_set_v: no read of its own.
        self.assertEqual((st["hits"], st["misses"], st["sets"], st["adds"], st["deletes"]),
                         (1, 1, 1, 0, 1))
        self.assertAlmostEqual(st["hit_rate"], 1 / 2)
        self.assertEqual(st["entries"], 0)
        self.assertEqual(st["max_entries"], 1024)
        self.assertEqual(st["mode"], "0600")
        self.assertEqual(st["eviction"], "none")
        self.assertEqual(st["attached_other"], 0)
        self.assertEqual(st["run_active"], 0)
        self.assertIsInstance(st["classes"], list)

    @unittest.skipUnless(tool("shm-inspect"), "shm-inspect not built")
    def test_stats_names_are_shm_inspects(self):
        out = subprocess.run([tool("shm-inspect"), "--json", "stat", self.name],
                             capture_output=True, text=True, check=True).stdout
        theirs = json.loads(out)
        ours = self.cache.stats()
        self.assertEqual(list(theirs), [k for k in ours if k in theirs])
        self.assertEqual(set(theirs) - set(ours), set())
        self.assertEqual(set(ours) - set(theirs),
                         {"run_generation", "dto_lists", "run_active", "ttl_policies"})
        self.assertEqual(theirs["max_entries"], ours["max_entries"])
        self.assertEqual(theirs["mode"], ours["mode"])

    def test_health(self):
        h = self.cache.health()
        self.assertEqual(h["ok"], True)
        self.assertIsNone(h["error"])
        self.assertEqual(h["attached"], 1)
        self.assertIsNone(self.cache.get("tickcache:health"))
        self.cache.close()
        self.assertEqual(self.cache.health(),
                         {"ok": False, "error": f"cache '{self.name}' is closed"})

    def test_concurrent_health_checks_are_all_healthy(self):
        # Every worker's periodic probe may run at once: another probe run
        # between this one's set and get (made certain here by a get that
        # runs it first: another process's, then another handle's of this
        # thread) must not make it read back another value, or nothing.
        code = "import sys, tickcache; print(tickcache.Cache(sys.argv[1]).health()['ok'])"
        other = tickcache.Cache(self.name)
        self.addCleanup(other.close)
        seen = []
        steps = [lambda: seen.append(other.health()["ok"]),
                 lambda: seen.append(run_python(code, self.name))]

        class Interleaved(tickcache.Cache):
            __slots__ = ()

            def get(self, key, default=None):
                if steps:
                    steps.pop()()
                return super().get(key, default)
        c = Interleaved(self.name)
        self.addCleanup(c.close)
        for _ in range(2):
            h = c.health()
            self.assertEqual((h["ok"], h["error"]), (True, None))
        self.assertEqual(seen, [(0, "True\n", ""), True])
        self.assertEqual(c.keys("tickcache:health*"), [])

    def test_readers_and_attached(self):
        self.cache.get("x")
        me = os.getpid()
        rs = [r for r in self.cache.readers() if r["pid"] == me]
        self.assertEqual(len(rs), 1)
        self.assertEqual(rs[0]["state"], "idle")
        self.assertEqual(self.cache.attached(), [{"pid": me, "handles": 1, "alive": True}])

    def test_save_and_load(self):
        c = self.cache
        c.set("a", b"1", type=5)
        c.set("b", b"2", ttl=100)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "snap")
            self.assertEqual(c.save(path), 2)
            c2 = self.other()
            c2.set("a", b"kept")
            self.assertEqual(c2.load(path), 1)
            self.assertEqual(c2.get("a"), b"kept")
            self.assertEqual(c2.get("b"), b"2")
            self.assertGreater(c2.get_item("b").expires_at, time.time() + 90)
            self.assertEqual(c2.load(path, replace=True), 2)
            self.assertEqual(c2.get_item("a")[:2], (b"1", 5))
            with self.assertRaises(FileNotFoundError):
                c2.load(os.path.join(d, "nope"))
            with self.assertRaises(FileNotFoundError):
                c.save(os.path.join(d, "no", "dir", "snap"))


class TestGetOrLoad(SegmentCase):
    def test_hit_miss_and_store(self):
        c = self.cache
        calls = []

        def loader():
            calls.append(1)
            return b"loaded"
        self.assertEqual(c.get_or_load("k", loader, ttl=30, type=4), b"loaded")
        self.assertEqual(c.get_or_load("k", loader), b"loaded")
        self.assertEqual(len(calls), 1)
        it = c.get_item("k")
        self.assertEqual((it.value, it.type), (b"loaded", 4))
        self.assertGreater(it.expires_at, time.time() + 20)
        self.assertEqual(c.get_or_load("ba", lambda: bytearray(b"ba")), b"ba")

    def test_loader_exception_passes_unchanged_and_nothing_is_cached(self):
        c = self.cache

        class Boom(Exception):
            pass
        err = Boom("source down")

        def loader():
            raise err
        with self.assertRaises(Boom) as cm:
            c.get_or_load("k", loader)
        self.assertIs(cm.exception, err)
        self.assertIsNone(c.get("k"))
        # The lease was dropped: the next call loads at once.
        self.assertEqual(c.get_or_load("k", lambda: b"v", wait=0), b"v")

    def test_loader_bad_results(self):
        c = self.cache
        with self.assertRaisesRegex(TypeError, "loader must return bytes-like, not str"):
            c.get_or_load("k", lambda: "text")
        with self.assertRaisesRegex(TypeError, "loader must return bytes-like, not NoneType"):
            c.get_or_load("k", lambda: None)
        with self.assertRaisesRegex(ValueError, "value is 1048577 bytes; the limit is 1048576"):
            c.get_or_load("k", lambda: b"x" * (tickcache.VALUE_MAX + 1))
        with self.assertRaisesRegex(TypeError, "loader must be callable, not bytes"):
            c.get_or_load("k", b"x")
        with self.assertRaisesRegex(ValueError, "wait must not be negative"):
            c.get_or_load("k", lambda: b"x", wait=-1)
        self.assertIsNone(c.get("k"))

    def _hold_lease(self, key):
        """A thread whose loader holds KEY's lease until release is set."""
        entered, release, result = threading.Event(), threading.Event(), {}

        def loader():
            entered.set()
            release.wait(30)
            return b"from-holder"

        def run():
            result["v"] = self.cache.get_or_load(key, loader, wait=30)
        t = threading.Thread(target=run)
        t.start()
        self.assertTrue(entered.wait(30))
        return t, release, result

    def test_waiter_times_out_with_timeout_error(self):
        t, release, result = self._hold_lease("slow")
        try:
            with self.assertRaises(TimeoutError) as cm:
                self.cache.get_or_load("slow", lambda: b"never", wait=0.2)
            self.assertEqual(cm.exception.errno, errno.ETIMEDOUT)
            self.assertIn("key 'slow'", str(cm.exception))
        finally:
            release.set()
            t.join()
        self.assertEqual(result["v"], b"from-holder")

    def test_gil_is_released_while_waiting(self):
        t, release, result = self._hold_lease("gil")
        got = {}
        started = threading.Event()

        def waiter():
            started.set()
            got["v"] = self.cache.get_or_load("gil", lambda: b"waiter-loaded", wait=30)
        w = threading.Thread(target=waiter)
        w.start()
        started.wait()
        # The waiter is now inside get_or_load.  Had it kept the GIL, this
        # thread could not run again until its 30 s wait ran out.
        time.sleep(0.2)
        ran = 0
        while ran < 1000:
            ran += 1
        self.assertTrue(w.is_alive())
        release.set()
        w.join(30)
        t.join(30)
        self.assertEqual(got["v"], b"from-holder")
        self.assertEqual(result["v"], b"from-holder")

    def test_close_while_waiting_closes_after_the_call(self):
        t, release, result = self._hold_lease("cl")
        got = {}
        started = threading.Event()

        def waiter():
            started.set()
            try:
                got["v"] = self.cache.get_or_load("cl", lambda: b"w", wait=30)
            except Exception as e:  # noqa: BLE001
                got["e"] = e
        w = threading.Thread(target=waiter)
        w.start()
        started.wait()
        time.sleep(0.1)
        self.cache.close()
        self.assertTrue(self.cache.closed)
        # Closed for every new call at once, though the wait goes on.
        with self.assertRaisesRegex(ValueError, "is closed"):
            self.cache.get("cl")
        self.assertTrue(w.is_alive())
        release.set()
        w.join(30)
        t.join(30)
        self.assertEqual(got, {"v": b"from-holder"})


class TestReadSections(SegmentCase):
    def test_peek_is_a_read_only_view(self):
        c = self.cache
        c.set("k", b"hello")
        with c.read() as r:
            v = r.peek("k")
            self.assertIsInstance(v, memoryview)
            self.assertTrue(v.readonly)
            self.assertEqual(bytes(v), b"hello")
            self.assertEqual(v[1:3].tobytes(), b"el")
            with self.assertRaises(TypeError):
                v[0] = 0
            self.assertIsNone(r.peek("missing"))
            v.release()
            s = v  # released views stay harmless
        self.assertRaises(ValueError, lambda: s[0])
        with self.assertRaisesRegex(ValueError, "peek outside the read section's block"):
            r.peek("k")

    def test_leaving_with_an_exported_view_raises_buffer_error(self):
        c = self.cache
        c.set("k", b"v" * 100)
        with self.assertRaises(BufferError) as cm:
            with c.read() as r:
                view = r.peek("k")
        self.assertEqual(str(cm.exception), "1 view(s) of the read section are still exported; "
                         "the section ends when the last is released")
        # The view stays valid; the section (and so the memory) is still held.
        self.assertEqual(bytes(view), b"v" * 100)
        with self.assertRaisesRegex(BufferError, r"cannot close cache .*1 read section\(s\) open"):
            c.close()
        with self.assertRaisesRegex(ValueError, "peek outside"):
            r.peek("k")
        view.release()
        c.close()  # the section ended with the last view
        self.assertTrue(c.closed)

    def test_view_exporter_refuses_after_the_section(self):
        c = self.cache
        c.set("k", b"abc")
        with c.read() as r:
            v = r.peek("k")
            exporter = v.obj
            v2 = memoryview(exporter)
            self.assertEqual(bytes(v2), b"abc")
            v2.release()
            v.release()
        with self.assertRaisesRegex(BufferError, "the read section of this view has ended"):
            memoryview(exporter)

    def test_view_released_in_another_thread(self):
        c = self.cache
        c.set("k", b"x")
        with self.assertRaises(BufferError):
            with c.read() as r:
                view = r.peek("k")
        t = threading.Thread(target=view.release)
        t.start()
        t.join()
        # The owner thread ends the section on its next call.
        self.assertEqual(c.get("k"), b"x")
        c.close()
        self.assertTrue(c.closed)

    def test_peek_from_another_thread_is_refused(self):
        c = self.cache
        c.set("k", b"x")
        err = {}
        with c.read() as r:
            def other():
                try:
                    r.peek("k")
                except ValueError as e:
                    err["e"] = str(e)
            t = threading.Thread(target=other)
            t.start()
            t.join()
        self.assertEqual(err["e"], "peek from a thread that did not enter the section")

    def test_section_enters_once_and_nests(self):
        c = self.cache
        c.set("k", b"x")
        r = c.read()
        with r:
            with c.read() as inner:
                self.assertEqual(bytes(inner.peek("k")), b"x")
            self.assertEqual(bytes(r.peek("k")), b"x")
        with self.assertRaisesRegex(ValueError, "a read section can be entered once"):
            r.__enter__()

    def test_dropped_open_section_is_ended(self):
        c = self.cache
        r = c.read()
        r.__enter__()
        del r
        gc.collect()
        c.close()
        self.assertTrue(c.closed)


class TestThreads(SegmentCase):
    def test_threads_share_a_cache(self):
        c = self.cache
        errors = []

        def work(t):
            try:
                for i in range(300):
                    c.set(f"t{t}:{i % 10}", b"%d" % i)
                    v = c.get(f"t{t}:{i % 10}")
                    if v != b"%d" % i:
                        errors.append((t, i, v))
                    c.incr("shared")
            except Exception as e:  # noqa: BLE001
                errors.append(e)
        ts = [threading.Thread(target=work, args=(t,)) for t in range(6)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(c.incr("shared", 0), 6 * 300)

    def test_a_result_never_changes_while_a_thread_holds_it(self):
        # Readers keep some results (a list) and drop others, on one key
        # that a writer rewrites with values of one length, so kept objects
        # are written in place while they are dropped: every result held is
        # still the value it was returned as, and is one that was written.
        c = self.cache
        key = "tradecore:market:quote:AAPL"

        def value(i):
            return b"%06d" % (i % 1000) + b"." * 58
        written = {value(i) for i in range(1000)}
        c.set(key, value(0))
        errors, rounds, stop = [], [0, 0, 0], threading.Event()

        def read(r):
            try:
                held, snaps = [], []
                while not stop.is_set():
                    for _ in range(20):
                        c.get(key)  # dropped
                    v = c.get(key)
                    held.append(v)
                    snaps.append(bytes(bytearray(v)))
                    rounds[r] += 1
                for v, s in zip(held, snaps):
                    if v != s or s not in written:
                        errors.append((v, s))
            except Exception as e:  # noqa: BLE001
                errors.append(e)

        old = sys.getswitchinterval()
        sys.setswitchinterval(1e-5)
        self.addCleanup(sys.setswitchinterval, old)
        readers = [threading.Thread(target=read, args=(r,)) for r in range(3)]
        for t in readers:
            t.start()
        writer = tickcache.Cache(self.name)
        self.addCleanup(writer.close)
        i, deadline = 0, time.monotonic() + 30
        while (i < 3000 or min(rounds) < 300) and time.monotonic() < deadline:
            i += 1
            writer.set(key, value(i))
        stop.set()
        for t in readers:
            t.join()
        self.assertEqual(errors, [])
        self.assertGreaterEqual(min(rounds), 300)

if __name__ == "__main__":
    unittest.main()
