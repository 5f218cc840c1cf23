# SPDX-License-Identifier: MIT
"""Cache.wait and Cache.wait_any (tc_wait, tc_wait_any): woken by a writer
of another process, timeouts, the GIL released while asleep, signals.  No
timing threshold: a bound only ends a broken build's wait."""
import os
import signal
import subprocess
import sys
import threading
import time

import tickcache
from support import SegmentCase, python_env

BOUND = 60.0


def sleeping_in_futex(pid, tid=None):
    """The thread sleeps in a futex wait (state S, wchan futex_*)."""
    base = f"/proc/{pid}/task/{tid}" if tid else f"/proc/{pid}"
    try:
        with open(f"{base}/stat") as f:
            st = f.read().rsplit(")", 1)[1].split()[0]
        with open(f"{base}/wchan") as f:
            wc = f.read()
    except OSError:
        return False
    return st == "S" and (wc == "0" or "futex" in wc)


def until(pred):
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > BOUND:
            raise AssertionError("condition never came")
        time.sleep(0.001)


class TestWait(SegmentCase):
    def test_newer_version_already_there_returns_at_once(self):
        v1 = self.cache.set("k", b"v1", type=3)
        it = self.cache.wait("k", version=v1 - 1)
        self.assertEqual((b"v1", 3, v1, None), tuple(it))
        self.assertEqual(b"v1", self.cache.wait("k").value)  # version 0: exists

    def test_timeout_returns_none_and_key_unchanged(self):
        v1 = self.cache.set("k", b"v1")
        t0 = time.monotonic()
        self.assertIsNone(self.cache.wait("k", version=v1, timeout=0.05))
        self.assertGreaterEqual(time.monotonic() - t0, 0.05)
        self.assertIsNone(self.cache.wait("k", version=v1, timeout=0))
        self.assertEqual(v1, self.cache.get_item("k").version)

    def test_deleted_key_returns_none(self):
        self.assertIsNone(self.cache.wait("gone", version=5, timeout=BOUND))

    def test_woken_by_a_writer_in_another_process(self):
        v1 = self.cache.set("quote", b"100")
        code = ("import sys, tickcache\n"
                "c = tickcache.Cache(sys.argv[1])\n"
                "it = c.wait('quote', version=int(sys.argv[2]), timeout=60)\n"
                "print(it.value.decode(), it.version)\n")
        p = subprocess.Popen([sys.executable, "-c", code, self.name, str(v1)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=python_env())
        self.addCleanup(p.kill)
        until(lambda: p.poll() is not None or sleeping_in_futex(p.pid))
        v2 = self.cache.set("quote", b"101")
        so, se = p.communicate(timeout=BOUND)
        self.assertEqual(0, p.returncode, se)
        self.assertEqual(f"101 {v2}", so.strip())

    def test_gil_released_while_asleep_and_woken_by_a_thread(self):
        v1 = self.cache.set("k", b"a")
        got = {}

        def waiter():
            got["tid"] = threading.get_native_id()
            got["item"] = self.cache.wait("k", version=v1, timeout=BOUND)

        t = threading.Thread(target=waiter)
        t.start()
        until(lambda: "tid" in got and sleeping_in_futex(os.getpid(), got["tid"]))
        # This thread runs Python meanwhile: the waiter does not hold the GIL.
        v2 = self.cache.set("k", b"b")
        t.join(BOUND)
        self.assertEqual((b"b", v2), (got["item"].value, got["item"].version))

    def test_a_key_that_comes_and_goes_never_stretches_the_timeout(self):
        # wait(version=0) wakes when the key is set, then reads it with the
        # GIL taken back; a key deleted meanwhile sends it back to sleep.
        # Before, each such sleep got the whole timeout again: a key set and
        # deleted more often than the timeout kept a 0.5 s wait asleep
        # for as long as that went on (seen failing: the waiter was still
        # asleep when the writer gave up after BOUND).
        import collections
        import itertools
        import operator

        got = {}

        def waiter():
            got["tid"] = threading.get_native_id()
            got["r"] = self.cache.wait("flap", 0, timeout=0.5)

        t = threading.Thread(target=waiter)
        t.start()
        until(lambda: "tid" in got and sleeping_in_futex(os.getpid(), got["tid"]))
        # Set, hold the GIL (sum() runs in C and never lets it go), delete:
        # one C-level call, so the woken waiter gets the GIL back only
        # after the delete, and reads nothing.
        flap = [(self.cache.set, "flap", b"x"), (sum, range(2_000_000)),
                (self.cache.delete, "flap")]
        t0 = time.monotonic()
        while t.is_alive() and time.monotonic() - t0 < BOUND:
            collections.deque(itertools.starmap(operator.call, flap), 0)
            time.sleep(0.01)
        t.join(BOUND)
        self.assertFalse(t.is_alive())
        self.assertLess(time.monotonic() - t0, BOUND)  # it returned while the key flapped
        self.assertIsNone(got["r"])

    def test_a_signal_handler_that_raises_ends_the_wait(self):
        v1 = self.cache.set("k", b"a")

        class Stop(Exception):
            pass

        def handler(sig, frame):
            raise Stop()

        old = signal.signal(signal.SIGALRM, handler)
        try:
            signal.setitimer(signal.ITIMER_REAL, 0.05)
            with self.assertRaises(Stop):
                self.cache.wait("k", version=v1, timeout=BOUND)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
        # A handler that returns lets the wait go on to its timeout.
        old = signal.signal(signal.SIGALRM, lambda s, f: None)
        try:
            signal.setitimer(signal.ITIMER_REAL, 0.02)
            self.assertIsNone(self.cache.wait("k", version=v1, timeout=0.2))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)

    def test_a_signal_caught_by_another_thread_ends_the_wait_soon(self):
        # CPython runs signal handlers in the main thread only.  A signal
        # that another thread takes (pthread_kill here; a process-directed
        # one, such as Ctrl-C, when the kernel picks that thread, or when
        # it lands just before the main thread's futex call) trips the
        # handler's flag without interrupting the main thread's sleep: the
        # wait must look at the flag on its own, not at its timeout's end.
        v1 = self.cache.set("k", b"a")

        class Stop(Exception):
            pass

        def handler(sig, frame):
            raise Stop()

        def other():
            until(lambda: sleeping_in_futex(os.getpid(), main_tid))
            signal.pthread_kill(threading.get_ident(), signal.SIGUSR1)

        main_tid = threading.get_native_id()
        old = signal.signal(signal.SIGUSR1, handler)
        calls = [lambda: self.cache.wait("k", version=v1, timeout=BOUND),
                 lambda: self.cache.wait("absent", timeout=BOUND),
                 lambda: self.cache.wait_any(self.cache.wait_any(), timeout=BOUND)]
        try:
            for call in calls:
                t = threading.Thread(target=other)
                t.start()
                t0 = time.monotonic()
                with self.assertRaises(Stop):
                    call()
                # Ended by the flag, not by its timeout.
                self.assertLess(time.monotonic() - t0, BOUND)
                t.join(BOUND)
        finally:
            signal.signal(signal.SIGUSR1, old)

    def test_wait_any(self):
        seq = self.cache.wait_any()
        self.assertIsInstance(seq, int)
        self.assertIsNone(self.cache.wait_any(seq, timeout=0))
        self.cache.set("x", b"1")
        seq2 = self.cache.wait_any(seq, timeout=BOUND)
        self.assertNotEqual(seq, seq2)
        self.cache.delete("x")
        self.assertNotEqual(seq2, self.cache.wait_any(seq2, timeout=BOUND))

    def test_async_wait(self):
        import asyncio
        from tickcache.aio import AsyncCache

        v1 = self.cache.set("k", b"a")

        async def main():
            ac = AsyncCache(self.cache)
            now = await ac.wait("k", version=v1 - 1)
            self.assertEqual(b"a", now.value)
            self.assertIsNone(await ac.wait("k", version=v1, timeout=0))
            seq = await ac.wait_any()
            waiter = asyncio.ensure_future(ac.wait("k", version=v1, timeout=BOUND))
            any_waiter = asyncio.ensure_future(ac.wait_any(seq, timeout=BOUND))
            await asyncio.sleep(0)
            v2 = self.cache.set("k", b"b")  # the loop is free while they wait
            item = await waiter
            self.assertEqual((b"b", v2), (item.value, item.version))
            self.assertNotEqual(seq, await any_waiter)

        asyncio.run(main())

    def test_cancelled_async_waits_give_their_executor_threads_back(self):
        # asyncio.wait_for() around a wait is how asyncio code bounds it.
        # Before, a cancelled wait's executor thread slept on until a write
        # or the wait's own timeout (None: never): two cancelled waits held
        # a two-thread executor, and nothing ran in it again (with the
        # default executor, asyncio.run() never returned: it joins it).
        import asyncio
        from concurrent.futures import ThreadPoolExecutor
        from tickcache.aio import AsyncCache

        v1 = self.cache.set("k", b"a")
        pool = ThreadPoolExecutor(max_workers=2)
        self.addCleanup(pool.shutdown, wait=False)

        async def main():
            ac = AsyncCache(self.cache, executor=pool)
            for key, version in (("k", v1), ("absent", 0)):
                with self.assertRaises(asyncio.TimeoutError):
                    await asyncio.wait_for(ac.wait(key, version), 0.05)
            seq = await ac.wait_any()
            with self.assertRaises(asyncio.TimeoutError):
                await asyncio.wait_for(ac.wait_any(seq), 0.05)
            loop = asyncio.get_running_loop()
            return await asyncio.wait_for(loop.run_in_executor(pool, lambda: "ran"), BOUND)

        self.assertEqual("ran", asyncio.run(main()))

    def test_async_wait_for_a_deleted_key_returns_none_before_its_timeout(self):
        import asyncio
        from tickcache.aio import AsyncCache

        v1 = self.cache.set("k", b"a")

        async def main():
            ac = AsyncCache(self.cache)
            t0 = time.monotonic()
            waiter = asyncio.ensure_future(ac.wait("k", version=v1, timeout=BOUND))
            await asyncio.sleep(0.3)  # asleep in the executor (not required)
            self.cache.delete("k")
            self.assertIsNone(await waiter)
            return time.monotonic() - t0  # the wait's timeout ends at t0 + BOUND or later

        self.assertLess(asyncio.run(main()), BOUND)

    def test_async_waits_refuse_the_timeouts_that_wait_refuses(self):
        # Before, the sliced executor side never handed TIMEOUT to the
        # library: -1 returned None (seen failing) and NaN slept for ever.
        import asyncio
        from tickcache.aio import AsyncCache

        ac = AsyncCache(self.cache)
        for bad in (-1, -0.5, float("nan"), True, "1", 1e300, 2**70):
            for sync, coro in ((lambda t: self.cache.wait("k", 0, t),
                                lambda t: ac.wait("k", 0, t)),
                               (lambda t: self.cache.wait_any(0, t),
                                lambda t: ac.wait_any(0, t))):
                with self.assertRaises((TypeError, ValueError)) as want:
                    sync(bad)
                with self.assertRaises(type(want.exception)) as got:
                    asyncio.run(asyncio.wait_for(coro(bad), BOUND))
                self.assertEqual(str(want.exception), str(got.exception))

    def test_bad_arguments(self):
        with self.assertRaises(ValueError):
            self.cache.wait("k", timeout=-1)
        with self.assertRaises(TypeError):
            self.cache.wait()
        self.cache.close()
        with self.assertRaises(ValueError):
            self.cache.wait("k", timeout=0)
