# SPDX-License-Identifier: MIT
"""tickcache.tier.RedisTier against a redis-server and a shm-bridge started
by the test (a unix socket in a temporary directory, no TCP).  Skipped, with
the reason, when redis-py (Debian's python3-redis, for /usr/bin/python3),
redis-server or the shm-bridge tool is missing."""
import multiprocessing
import os
import shutil
import subprocess
import tempfile
import time
import unittest

import tickcache
from tickcache.dedupe import SignalPublishCache
from support import SegmentCase, tool

try:
    import redis
except ImportError:  # pragma: no cover - depends on the interpreter
    redis = None

from tickcache.tier import PENDING_TYPE, RedisTier

BRIDGE = tool("shm-bridge")
SKIP = (None if redis is not None and shutil.which("redis-server") and BRIDGE else
        "needs redis-py (python3-redis, for /usr/bin/python3), redis-server and "
        "build/bin/shm-bridge (built with libhiredis-dev)")


def _wait(cond, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return False


def _mark_worker(sock, name, keys, q):
    c = tickcache.Cache(name)
    t = RedisTier(c, redis.Redis(unix_socket_path=sock), ["signal:"])
    q.put([t.mark_once(k, 60) for k in keys])
    c.close()


@unittest.skipIf(SKIP, SKIP)
class TestRedisTier(SegmentCase):
    # --ping-ms 300: a loaded host must not take a tier down by a late ping
    # in the middle of a check of what is cached.
    create_kw = dict(max_entries=4096, memory="4M", max_readers=32)

    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="test_tier.")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.sock = os.path.join(self.dir, "redis.sock")
        self.redis_proc = subprocess.Popen(
            ["redis-server", "--port", "0", "--unixsocket", self.sock, "--save", "",
             "--appendonly", "no", "--logfile", os.path.join(self.dir, "redis.log")])
        self.addCleanup(self._stop, self.redis_proc)
        self.r = redis.Redis(unix_socket_path=self.sock)
        self.addCleanup(self.r.close)
        self.assertTrue(_wait(self._ping), "redis-server did not start")
        # Host B: a second segment with its own bridge.
        self.other_name = self.name + "-b"
        self.cache_b = self.other(self.other_name)
        self.bridges = [self._bridge(self.name), self._bridge(self.other_name)]
        self.assertTrue(_wait(lambda: self.cache.info()["tier"] == "up"))
        self.assertTrue(_wait(lambda: self.cache_b.info()["tier"] == "up"))
        self.tier = RedisTier(self.cache, self.r, ["quote:", "signal:"], max_ttl=60)
        self.tier_b = RedisTier(self.cache_b, redis.Redis(unix_socket_path=self.sock),
                                ["quote:", "signal:"], max_ttl=60)
        self.addCleanup(self.tier_b.redis.close)

    def _settle(self):
        """Wait until every invalidation of the writes made so far arrived:
        the one of a later write (a fence) has."""
        self.cache.set("quote:fence", b"x")
        self.r.set("quote:fence", b"y")
        self.assertTrue(_wait(lambda: not self.cache.exists("quote:fence")))

    def _ping(self):
        try:
            return self.r.ping()
        except redis.exceptions.ConnectionError:
            return False

    def _bridge(self, seg):
        p = subprocess.Popen([BRIDGE, "--foreground", "--quiet", "--redis", "unix:" + self.sock,
                              "--ping-ms", "300", "--map", "quote:=" + seg,
                              "--map", "signal:=" + seg])
        self.addCleanup(self._stop, p)
        return p

    @staticmethod
    def _stop(p):
        if p.poll() is None:
            p.send_signal(15)
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def test_info_shows_the_tier(self):
        info = self.cache.info()
        self.assertEqual(info["tier"], "up")
        self.assertEqual(info["tier_pid"], self.bridges[0].pid)
        self.assertEqual(self.tier.tier_state(), "up")

    def test_read_through_caches_with_the_redis_ttl(self):
        self.r.set("quote:AAPL", b"189.5", px=20000)
        self._settle()  # else its invalidation may remove the value just cached
        self.assertEqual(self.tier.get("quote:AAPL"), b"189.5")
        it = self.cache.get_item("quote:AAPL")
        self.assertEqual(it.value, b"189.5")
        self.assertEqual(it.type, 0)
        left = it.expires_at - time.time()
        self.assertTrue(0 < left <= 20.0, left)
        self.assertIsNone(self.tier.get("quote:NONE"))
        self.assertEqual(self.tier.get("quote:NONE", b"-"), b"-")
        self.assertTrue(_wait(lambda: not self.cache.exists("quote:NONE"), 3.0))
        # No Redis TTL: max_ttl.
        self.r.set("quote:MSFT", b"410")
        self._settle()
        self.assertEqual(self.tier.get("quote:MSFT"), b"410")
        left = self.cache.get_item("quote:MSFT").expires_at - time.time()
        self.assertTrue(20.0 < left <= 60.0, left)

    def test_write_on_one_host_is_never_read_stale_on_the_other(self):
        self.r.set("quote:X", b"old")
        self._settle()
        self.assertEqual(self.tier_b.get("quote:X"), b"old")
        self.assertEqual(self.cache_b.get("quote:X"), b"old")  # cached on B
        self.tier.set("quote:X", b"new")
        self.assertEqual(self.r.get("quote:X"), b"new")
        self.assertTrue(_wait(lambda: self.cache_b.get("quote:X") != b"old"))
        self.assertEqual(self.tier_b.get("quote:X"), b"new")

    def test_a_write_through_that_lost_in_redis_is_not_cached(self):
        # Host B's write lands in Redis after ours, and its invalidation
        # (and ours) is applied before our local install: a plain set
        # after the Redis SET left b"v1" cached while Redis had b"v2".
        other = redis.Redis(unix_socket_path=self.sock)
        self.addCleanup(other.close)
        real = self.tier.redis
        test = self

        class Racing:
            def __getattr__(self, name):
                return getattr(real, name)

            def set(self, *a, **kw):
                r = real.set(*a, **kw)
                other.set("quote:SR", b"v2")
                test._settle()
                return r

        self.tier.redis = Racing()
        try:
            self.tier.set("quote:SR", b"v1")
        finally:
            self.tier.redis = real
        self._settle()
        self.assertEqual(self.r.get("quote:SR"), b"v2")
        self.assertNotEqual(self.cache.get("quote:SR"), b"v1")

    def test_a_late_fill_never_outlives_the_redis_ttl(self):
        # A reader held 150 ms between its Redis read and its install (a
        # preemption): the local copy expired that much after Redis's.
        self.r.set("quote:LT", b"v", px=400)
        self._settle()
        read = self.tier._redis_read

        def slow(k):
            out = read(k)
            time.sleep(0.15)
            return out

        self.tier._redis_read = slow
        before = time.time()
        try:
            self.assertEqual(self.tier.get("quote:LT"), b"v")
        finally:
            del self.tier._redis_read
        it = self.cache.get_item("quote:LT")
        if it is not None:
            self.assertIsNotNone(it.expires_at)
            self.assertLessEqual(it.expires_at, before + 0.4)

    def test_a_placeholder_is_a_miss(self):
        self.r.set("quote:P", b"v")
        self._settle()
        # Another reader's fill in progress.
        self.assertTrue(self.cache.add("quote:P", b"x" * 16, ttl=5, type=PENDING_TYPE))
        self.assertEqual(self.tier.get("quote:P"), b"v")
        self.assertEqual(self.tier.fills_lost, 1)  # the placeholder was not ours
        self.assertEqual(self.cache.get_item("quote:P").type, PENDING_TYPE)

    def test_down_tier_bypasses_local_copies(self):
        self.r.set("quote:D", b"r")
        self.cache.set("quote:D", b"local")  # what a dead bridge could leave
        self.bridges[0].kill()
        self.bridges[0].wait()
        self.assertEqual(self.tier.tier_state(), "down")
        self.assertEqual(self.tier.get("quote:D"), b"r")
        self.assertEqual(self.cache.get("quote:D"), b"local")  # not cached over

    def test_keys_outside_the_prefixes_are_local(self):
        self.tier.set("other:k", b"v", ttl=10)
        self.assertIsNone(self.r.get("other:k"))
        self.assertEqual(self.tier.get("other:k"), b"v")
        self.assertTrue(self.tier.add("other:m", b"1", ttl=10))
        self.assertFalse(self.tier.add("other:m", b"1", ttl=10))
        self.assertFalse(self.r.exists("other:m"))

    def test_mark_once_across_hosts(self):
        self.assertTrue(self.tier.mark_once("signal:AAPL:1", 60))
        self.assertFalse(self.tier.mark_once("signal:AAPL:1", 60))
        self.assertFalse(self.tier_b.mark_once("signal:AAPL:1", 60))
        self.assertEqual(self.r.get("signal:AAPL:1"), b"1")
        self.assertTrue(0 < self.r.pttl("signal:AAPL:1") <= 60000)
        with self.assertRaises(ValueError):
            self.tier.mark_once("signal:x", 0)

    def test_mark_race_of_processes_on_two_hosts(self):
        keys = ["signal:race:%d:%d" % (os.getpid(), i) for i in range(300)]
        ctx = multiprocessing.get_context("fork")
        q = ctx.Queue()
        procs = [ctx.Process(target=_mark_worker,
                             args=(self.sock, (self.name, self.other_name)[i % 2], keys, q))
                 for i in range(6)]
        for p in procs:
            p.start()
        results = [q.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(30)
            self.assertEqual(p.exitcode, 0)
        wins = [sum(r[i] for r in results) for i in range(len(keys))]
        self.assertEqual(wins, [1] * len(keys))

    def test_mark_with_redis_down_fails_closed_or_local(self):
        dead = RedisTier(self.cache, redis.Redis(unix_socket_path=self.dir + "/none.sock"),
                         ["signal:"])
        self.assertFalse(dead.mark_once("signal:down", 60))
        self.assertEqual(dead.refused, 1)
        self.assertFalse(self.cache.exists("signal:down"))  # given back
        local = RedisTier(self.cache, dead.redis, ["signal:"], local_only=True)
        self.assertTrue(local.mark_once("signal:down", 60))
        self.assertFalse(local.mark_once("signal:down", 60))
        self.assertEqual(local.local_only_marks, 1)

    def test_signal_publish_cache_takes_a_tier(self):
        a, b = SignalPublishCache(self.tier), SignalPublishCache(self.tier_b)
        self.assertTrue(a.mark_published("AAPL", 1714568400, "s1"))
        self.assertFalse(b.mark_published("AAPL", 1714568400, "s2"))
        self.assertTrue(b.was_published("AAPL", 1714568400))
        self.assertEqual(b.get_signal_id("AAPL", 1714568400), "s1")

    def test_a_mark_lost_to_another_host_never_reads_as_ours(self):
        # While this host asks Redis for a mark another host holds, and after
        # a crash right then, a reader of this host must see the winner's
        # signal id, never the one this host failed to publish.
        t = 1714568400
        self.assertTrue(SignalPublishCache(self.tier_b).mark_published("AAPL", t, "sig-B"))
        reader = SignalPublishCache(RedisTier(self.cache, self.r, ["signal:"]))
        seen = []
        real_set = self.r.set

        def set_seen_by_a_reader(*args, **kw):
            if kw.get("nx"):
                seen.append((reader.get_signal_id("AAPL", t), reader.was_published("AAPL", t)))
            return real_set(*args, **kw)
        self.r.set = set_seen_by_a_reader
        a = SignalPublishCache(self.tier)
        self.assertFalse(a.mark_published("AAPL", t, "sig-A"))
        self.assertEqual(seen, [("sig-B", True)])
        self.assertEqual(a.get_signal_id("AAPL", t), "sig-B")
        self.assertEqual(reader.get_signal_id("AAPL", t), "sig-B")
        # Won: the local copy is the real mark (type 0, the mark's TTL).
        self.r.set = real_set
        self.assertTrue(a.mark_published("AAPL", t + 60, "sig-A2", ttl=30))
        it = self.cache.get_item(a.key("AAPL", t + 60))
        if it is not None:  # unless this host's bridge invalidated it already
            self.assertEqual((it.value, it.type), (b"sig-A2", 0))
            self.assertAlmostEqual(it.expires_at - tickcache.now(), 30, delta=5)
        self.assertEqual(reader.get_signal_id("AAPL", t + 60), "sig-A2")

    def test_cached_decorator_loads_once_per_fleet(self):
        calls = []

        @tickcache.cached(self.tier, ttl=30, key=lambda uid: "quote:profile:%d" % uid)
        def profile(uid):
            calls.append(uid)
            return {"uid": uid}

        self.assertEqual(profile(7), {"uid": 7})
        self.assertEqual(profile(7), {"uid": 7})
        self.assertEqual(calls, [7])
        self.assertTrue(self.r.exists("quote:profile:7"))
        # Another host finds it in Redis.
        self.assertEqual(self.tier_b.get("quote:profile:7"), self.r.get("quote:profile:7"))
        profile.invalidate(7)
        self.assertFalse(self.r.exists("quote:profile:7"))
        self.assertEqual(profile(7), {"uid": 7})
        self.assertEqual(calls, [7, 7])

    def test_get_or_load_refuses_a_negative_ttl_before_loading(self):
        calls = []
        with self.assertRaisesRegex(ValueError, "ttl must be >= 0"):
            self.tier.get_or_load("quote:neg", lambda: calls.append(1) or b"v", ttl=-1)
        self.assertEqual(calls, [])
        self.assertFalse(self.r.exists("tc-lock:quote:neg"))

    def test_rate_limit_is_one_window_for_the_fleet(self):
        key = "rl:%d" % os.getpid()
        got = [self.tier.rate_limit(key, 3, 10) for _ in range(2)]
        got += [self.tier_b.rate_limit(key, 3, 10) for _ in range(2)]
        self.assertEqual(got, [(True, 1), (True, 2), (True, 3), (False, 4)])
        self.assertTrue(0 < self.r.pttl(key) <= 10000)


if __name__ == "__main__":
    unittest.main()
