# SPDX-License-Identifier: MIT
"""Across processes: fork, multiprocessing, two interpreters on one segment,
C tools writing what Python reads and the other way round."""
import multiprocessing
import os
import subprocess
import sys
import textwrap
import unittest

import tickcache
from support import SegmentCase, python_env, run_python, tool


def _add_worker(name, key, q):
    # An inherited Cache is not used here: a fresh process attaches anew.
    with tickcache.Cache(name) as c:
        q.put(c.add(key, b"%d" % os.getpid()))


def _inherited_worker(cache, q):
    # multiprocessing's fork start method hands the parent's Cache over.
    cache.set("child", b"%d" % os.getpid())
    q.put((os.getpid(), cache.get("parent"),
           sorted({r["pid"] for r in cache.readers() if r["pid"] == os.getpid()})))


class TestFork(SegmentCase):
    def test_child_reattaches_and_never_uses_parent_slots(self):
        c = self.cache
        c.set("k", b"parent")
        c.get("k")  # the parent's thread now holds a reader slot
        parent = os.getpid()
        parent_slots = [r["slot"] for r in c.readers() if r["pid"] == parent]
        self.assertEqual(len(parent_slots), 1)

        def child():
            ok = c.get("k") == b"parent"
            c.set("k2", b"child")
            mine = [x["slot"] for x in c.readers() if x["pid"] == os.getpid()]
            ok = ok and len(mine) == 1 and mine[0] not in parent_slots
            c.close()
            return b"%d %d" % (ok, mine[0] if mine else -1)

        code, msg = self.in_child(child)
        self.assertEqual(code, 0)
        ok, slot = msg.split()
        self.assertEqual(ok, "1")
        self.assertNotIn(int(slot), parent_slots)
        self.assertEqual(c.get("k2"), b"child")
        # The parent's handle and slot are untouched.
        self.assertEqual([x["slot"] for x in c.readers() if x["pid"] == parent], parent_slots)

    def test_child_on_a_recreated_segment_does_not_see_the_parents_results(self):
        # get() remembers results by version; a child that attaches anew may
        # find a new segment under the name, where the same key has the
        # same version with another value.
        c = self.cache
        self.assertEqual(c.set("k", b"parent"), 1)
        self.assertEqual(c.get("k"), b"parent")
        self.assertIs(c.get("k"), c.get("k"))  # kept

        def child():
            tickcache.unlink(self.name)
            with tickcache.Cache(self.name, create=True, **self.create_kw) as n:
                ver = n.set("k", b"second")
            return b"%d %r" % (ver, c.get("k"))

        self.assertEqual(self.in_child(child), (0, "1 b'second'"))

    def test_child_close_does_not_close_parent(self):
        pid = os.fork()
        if pid == 0:
            try:
                self.cache.close()
            finally:
                os._exit(0)
        self.assertEqual(self.wait_child(pid), 0)
        self.assertFalse(self.cache.closed)
        self.cache.set("still", b"open")
        self.assertEqual(self.cache.get("still"), b"open")

    def test_multiprocessing_fork_uses_inherited_cache(self):
        ctx = multiprocessing.get_context("fork")
        self.cache.set("parent", b"p")
        q = ctx.Queue()
        p = ctx.Process(target=_inherited_worker, args=(self.cache, q))
        p.start()
        pid, seen, slots = q.get(timeout=60)
        p.join(60)
        self.assertEqual(p.exitcode, 0)
        self.assertEqual(seen, b"p")
        self.assertEqual(slots, [pid])
        self.assertEqual(self.cache.get("child"), b"%d" % pid)

    def test_add_is_atomic_across_processes(self):
        ctx = multiprocessing.get_context("fork")
        q = ctx.Queue()
        ps = [ctx.Process(target=_add_worker, args=(self.name, "mark", q)) for _ in range(6)]
        for p in ps:
            p.start()
        results = [q.get(timeout=60) for _ in ps]
        for p in ps:
            p.join(60)
            self.assertEqual(p.exitcode, 0)
        self.assertEqual(sorted(results), [False] * 5 + [True])
        winner = int(self.cache.get("mark"))
        self.assertIn(winner, [p.pid for p in ps])


def _dedupe_worker(name, go, q):
    from tickcache import dedupe
    import datetime as dt
    with tickcache.Cache(name) as c:
        cc, sp = dedupe.CandleCache(c), dedupe.SignalPublishCache(c)
        t = dt.datetime(2024, 5, 1, 13)
        go.wait(60)
        won = [cc.should_process("EURUSD", "1h", t),
               sp.mark_published("EURUSD", t, "sig-%d" % os.getpid())]
        q.put((os.getpid(), won))


class TestDedupeRace(SegmentCase):
    def test_exactly_one_process_wins_each_mark(self):
        ctx = multiprocessing.get_context("fork")
        q, go = ctx.Queue(), ctx.Event()
        ps = [ctx.Process(target=_dedupe_worker, args=(self.name, go, q)) for _ in range(6)]
        for p in ps:
            p.start()
        go.set()
        results = dict(q.get(timeout=60) for _ in ps)
        for p in ps:
            p.join(60)
            self.assertEqual(p.exitcode, 0)
        for i in range(2):
            self.assertEqual(sorted(w[i] for w in results.values()), [False] * 5 + [True])
        from tickcache import dedupe
        import datetime as dt
        winner = [pid for pid, w in results.items() if w[1]][0]
        sp = dedupe.SignalPublishCache(self.cache)
        self.assertEqual(sp.get_signal_id("EURUSD", dt.datetime(2024, 5, 1, 13)),
                         "sig-%d" % winner)


class TestTwoInterpreters(SegmentCase):
    def test_writer_and_reader_processes(self):
        code = textwrap.dedent("""
            import sys, tickcache
            c = tickcache.Cache(sys.argv[1])
            if sys.argv[2] == "write":
                for i in range(100):
                    c.set("k%d" % i, b"v%d" % i, type=9)
                c.set_json("j", {"a": [1, 2]})
            else:
                ok = all(c.get("k%d" % i) == b"v%d" % i for i in range(100))
                print(ok, c.get_item("k5").type, c.get_json("j"))
            c.close()
        """)
        rc, out, err = run_python(code, self.name, "write")
        self.assertEqual((rc, err), (0, ""))
        rc, out, err = run_python(code, self.name, "read")
        self.assertEqual((rc, err), (0, ""))
        self.assertEqual(out.strip(), "True 9 {'a': [1, 2]}")

    def test_single_flight_across_processes(self):
        code = textwrap.dedent("""
            import sys, time, tickcache
            c = tickcache.Cache(sys.argv[1])
            def loader():
                c.incr("loads")
                time.sleep(0.5)
                return b"expensive"
            print(c.get_or_load("sf", loader, wait=60).decode())
        """)
        procs = [subprocess.Popen([sys.executable, "-c", code, self.name], env=python_env(),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(4)]
        outs = [p.communicate(timeout=120) for p in procs]
        self.assertEqual([p.returncode for p in procs], [0] * 4, outs)
        self.assertEqual([o.strip() for o, _ in outs], ["expensive"] * 4)
        self.assertEqual(self.cache.incr("loads", 0), 1)

    def test_cached_single_flight_when_the_loader_raises_or_is_slow(self):
        # argv: name, role.  "fail": the first loader, which raises after a
        # while; "wait": a process that waits for it, then loads itself.
        code = textwrap.dedent("""
            import sys, time, tickcache
            c = tickcache.Cache(sys.argv[1])
            role = sys.argv[2]
            @tickcache.cached(c, wait=20)
            def quote(sym):
                c.incr("loads:" + role)
                if role == "fail":
                    c.set("started", b"1")
                    time.sleep(0.5)
                    raise ConnectionError("provider down")
                time.sleep(0.3)
                return {"sym": sym, "by": role}
            if role != "fail":
                while c.get("started") is None:
                    time.sleep(0.01)
            try:
                print(quote("AAPL"))
            except ConnectionError as e:
                print("ConnectionError", e)
        """)
        def start(role):
            return subprocess.Popen([sys.executable, "-c", code, self.name, role],
                                    env=python_env(), stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
        procs = [start("fail")] + [start("wait") for _ in range(3)]
        outs = [p.communicate(timeout=120) for p in procs]
        self.assertEqual([(p.returncode, e) for p, (_, e) in zip(procs, outs)], [(0, "")] * 4)
        self.assertEqual(outs[0][0], "ConnectionError provider down\n")
        # One waiter took the load over; the others waited for its value.
        self.assertEqual([o for o, _ in outs[1:]], ["{'sym': 'AAPL', 'by': 'wait'}\n"] * 3)
        self.assertEqual((self.cache.incr("loads:fail", 0), self.cache.incr("loads:wait", 0)),
                         (1, 1))

    def test_a_loader_slower_than_wait_runs_again_in_a_waiter(self):
        # The load lease lasts WAIT seconds (at least 1): a waiter takes an
        # expired one over and loads, as tc_get_or_load documents.  The
        # first process's lease lasts 1 s; the second waits up to 10 s, so
        # the lease runs out first whatever the load of the machine.
        code = textwrap.dedent("""
            import sys, time, tickcache
            c = tickcache.Cache(sys.argv[1])
            role = sys.argv[2]
            if role == "second":
                while c.get("started") is None:
                    time.sleep(0.01)
            @tickcache.cached(c, wait=1 if role == "first" else 10)
            def slow():
                c.incr("loads")
                c.set("started", b"1")
                time.sleep(2)
                return role
            print(slow())
        """)
        procs = [subprocess.Popen([sys.executable, "-c", code, self.name, role],
                                  env=python_env(), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
                 for role in ("first", "second")]
        outs = [p.communicate(timeout=120) for p in procs]
        self.assertEqual(outs, [("first\n", ""), ("second\n", "")])
        self.assertEqual(self.cache.incr("loads", 0), 2)

    def test_run_is_shared_by_processes(self):
        from tickcache.strategy import StrategyCache
        sc = StrategyCache(self.cache)
        sc.start_run(1_700_000_000, run_id=42)
        code = textwrap.dedent("""
            import sys, dataclasses, tickcache
            from tickcache.strategy import StrategyCache
            @dataclasses.dataclass
            class Sig:
                symbol: str
                strength: float
            Sig.__module__, Sig.__qualname__ = "shared", "Sig"
            sc = StrategyCache(tickcache.Cache(sys.argv[1]))
            print(sc.get_run_anchor().run_id)
            sc.set_dto("signals", Sig("AAPL", 0.5))
        """)
        rc, out, err = run_python(code, self.name)
        self.assertEqual((rc, err), (0, ""))
        self.assertEqual(out.strip(), "42")
        import dataclasses

        @dataclasses.dataclass
        class Sig:
            symbol: str
            strength: float
        Sig.__module__, Sig.__qualname__ = "shared", "Sig"
        self.assertEqual(sc.get_dtos("signals", Sig), [Sig("AAPL", 0.5)])
        sc.clear()


@unittest.skipUnless(tool("shm-inspect"), "shm-inspect not built")
class TestCTools(SegmentCase):
    def inspect(self, *args):
        return subprocess.run([tool("shm-inspect"), *args], capture_output=True, text=True,
                              timeout=60)

    def test_c_writer_python_reader(self):
        p = self.inspect("set", self.name, "from-c", "hello from C", "--type", "12")
        self.assertEqual(p.returncode, 0, p.stderr)
        it = self.cache.get_item("from-c")
        self.assertEqual((it.value, it.type), (b"hello from C", 12))

    def test_python_writer_c_reader(self):
        self.cache.set("from-py", b"hello from Python")
        p = self.inspect("get", self.name, "from-py", "--raw")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.rstrip("\n"), "hello from Python")
        p = self.inspect("--json", "keys", self.name)
        self.assertIn("from-py", p.stdout)


if __name__ == "__main__":
    unittest.main()
