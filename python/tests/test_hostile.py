# SPDX-License-Identifier: MIT
"""A hostile or careless caller: Python code that runs in the middle of a
call (an argument's __index__ or __fspath__, a generator, a finalizer, a
signal handler) and closes the cache, a thread that closes it while another
waits.  Each case runs in a child interpreter, so that a use-after-free of
the library handle shows as the child's crash (exit status), not as a
crash of the suite."""
import array
import os
import signal
import subprocess
import sys
import textwrap
import unittest

import tickcache
from support import SegmentCase, python_env, run_python, unique_name

PRELUDE = textwrap.dedent("""
    import gc, os, signal, sys, threading, time
    import tickcache
    NAME = sys.argv[1]
    tickcache.Cache(NAME, create=True, max_entries=256, memory="1M").close()

    def fresh():
        c = tickcache.Cache(NAME)
        c.set("k", b"v")
        c.get("k")
        return c

    def outcome(label, f):
        try:
            r = f()
            print(label, "->", type(r).__name__, flush=True)
        except Exception as e:  # noqa: BLE001
            msg = str(e).replace(NAME, "NAME")
            print(label, "!!", type(e).__name__, msg, flush=True)

    # NAME made again, small (writes soon reuse freed blocks), with k.
    def small_segment(value=b"A" * 200):
        tickcache.unlink(NAME)
        c = tickcache.Cache(NAME, create=True, max_entries=256, memory="256K")
        c.set("k", value)
        return c

    # Free k's block and write other values over it (until the segment is
    # full: nothing is freed while a section is open).
    def overwrite(c):
        try:
            for i in range(20000):
                c.set("k", bytes([66 + i % 20]) * 200)
                c.set("x%d" % (i % 50), b"Z" * 200)
        except tickcache.FullError:
            pass

    # A view of k from a thread that left its block with the view exported
    # (BufferError) and ended.
    def view_of_an_ended_thread(c):
        box = {}
        def a():
            try:
                with c.read() as r:
                    box["v"] = r.peek("k")
            except BufferError:
                pass
        t = threading.Thread(target=a)
        t.start()
        t.join()
        time.sleep(0.2)  # gone, or waiting for the view's release
        return box["v"]
""")


def run_cases(test, body, expected, timeout=120):
    """Run PRELUDE and BODY in a child interpreter (a session of its own, so
    that a hung child and its forks are killed) and compare its exit status
    and output lines with (0, EXPECTED)."""
    name = unique_name("hostile")
    code = PRELUDE + textwrap.dedent(body) + "\ntickcache.unlink(NAME)\n"
    p = subprocess.Popen([sys.executable, "-c", code, name], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=python_env(),
                         start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        err = f"timed out after {timeout} s\n" + err
    rc = p.returncode
    if rc != 0:
        run_python("import sys, tickcache; tickcache.unlink(sys.argv[1], missing_ok=True)",
                   name)
    test.assertEqual((rc, out.splitlines()), (0, expected), err[-3000:])


CLOSED = "!! ValueError cache 'NAME' is closed"


class TestCloseInsideACall(unittest.TestCase):
    def test_an_argument_that_closes_the_cache_gives_value_error(self):
        # Before: every one of these used the handle the call had taken
        # before converting its arguments, after close() had freed it
        # (the child died of SIGSEGV at the first).
        run_cases(self, """
            class Closer:
                def __init__(self, c):
                    self.c = c
                def __index__(self):
                    self.c.close()
                    return 5
                def __bool__(self):
                    self.c.close()
                    return True
                def __fspath__(self):
                    self.c.close()
                    return os.path.join(os.environ.get("TMPDIR", "/tmp"), NAME + ".snap")

            def closing_keys(c):
                yield "k"
                c.close()
                yield "k"

            cases = [
                ("set ttl", lambda c: c.set("k", b"v", Closer(c))),
                ("add ttl", lambda c: c.add("k2", b"v", Closer(c))),
                ("cas ttl", lambda c: c.cas("k", b"v", 1, Closer(c))),
                ("expire ttl", lambda c: c.expire("k", Closer(c))),
                ("incr ttl", lambda c: c.incr("n", 1, Closer(c))),
                ("rate_limit window", lambda c: c.rate_limit("r", 5, Closer(c))),
                ("get_or_load ttl", lambda c: c.get_or_load("g", lambda: b"x", Closer(c))),
                ("get_or_load wait", lambda c: c.get_or_load("g", lambda: b"x", 1, Closer(c))),
                ("ttl_policy ttl", lambda c: c.ttl_policy("p:", Closer(c))),
                ("wait timeout", lambda c: c.wait("k", 0, Closer(c))),
                ("wait_any timeout", lambda c: c.wait_any(0, Closer(c))),
                ("get_many generator", lambda c: c.get_many(closing_keys(c))),
                ("save path", lambda c: c.save(Closer(c))),
                ("load path", lambda c: c.load(Closer(c))),
                ("load replace", lambda c: c.load("/nonexistent", Closer(c))),
                ("load_ttl_policies path", lambda c: c.load_ttl_policies(Closer(c))),
                ("_run_start ts", lambda c: c._run_start(Closer(c))),
            ]
            for label, f in cases:
                c = fresh()
                outcome(label, lambda: f(c))
                print(label, "closed:", c.closed, flush=True)
            """, [line for label in ("set ttl", "add ttl", "cas ttl", "expire ttl", "incr ttl",
                                     "rate_limit window", "get_or_load ttl", "get_or_load wait",
                                     "ttl_policy ttl", "wait timeout", "wait_any timeout",
                                     "get_many generator", "save path", "load path",
                                     "load replace", "load_ttl_policies path", "_run_start ts")
                  for line in (f"{label} {CLOSED}", f"{label} closed: True")])

    @unittest.skipIf(sys.version_info >= (3, 12),
                     "from 3.12 a collection runs between bytecodes, never inside a C call")
    def test_a_collection_that_closes_the_cache_inside_a_call(self):
        # A collection starts at an allocation of a tracked object (a list,
        # a dict) inside the call; its callbacks and the finalizers it runs
        # are Python code.  With the threshold at 1, the Nth collection after
        # arming closes the cache: for readers() the second, in its callback
        # (it makes a dict per reader slot while the library walks the
        # slots); for get_many() the first, at its result list.  Before:
        # readers() went on walking a freed handle (SIGSEGV), get_many()
        # locked one.
        run_cases(self, """
            others = [fresh() for _ in range(6)]  # six reader slots: six dicts
            state = {"armed": 0, "c": None}
            def on_collect(phase, info):
                if phase == "start" and state["armed"]:
                    state["armed"] -= 1
                    if state["armed"] == 0:
                        state["c"].close()
            gc.callbacks.append(on_collect)
            for label, nth, args in (("readers", 2, ()), ("get_many", 1, (["k", "k"],))):
                c = fresh()
                f = getattr(c, label)
                gc.collect()
                gc.set_threshold(1)
                state["c"], state["armed"] = c, nth
                try:
                    outcome(label, lambda: f(*args))
                finally:
                    state["armed"] = 0
                    gc.set_threshold(700)
                print(label, "closed:", c.closed, flush=True)
            """, ["readers -> list", "readers closed: True",
                  f"get_many {CLOSED}", "get_many closed: True"])

    @unittest.skipIf(sys.version_info >= (3, 12),
                     "from 3.12 a collection runs between bytecodes, never inside a C call")
    def test_a_collection_that_empties_get_manys_list(self):
        # get_many read the keys' bytes from the caller's list, then made its
        # result list: a collection started there ran a callback that
        # emptied the caller's list, freeing the key objects, and the lookups
        # read freed memory (seen: wrong values for keys that are set).  Now
        # it holds a reference of its own to each key.
        run_cases(self, """
            c = fresh()
            n = 64
            for i in range(n):
                c.set("key:%05d" % i, b"value %d" % i)
            keys = ["key:%05d" % i for i in range(n)]  # only the list holds them
            junk = []
            state = {"armed": False}
            def on_collect(phase, info):
                if phase == "start" and state["armed"]:
                    state["armed"] = False
                    keys.clear()
                    junk.extend("XXXX:%05d" % i for i in range(4 * n))  # reuse the memory
            gc.callbacks.append(on_collect)
            gc.collect()
            gc.set_threshold(1)
            state["armed"] = True
            try:
                got = c.get_many(keys)
            finally:
                state["armed"] = False
                gc.set_threshold(700)
            # The list was emptied before get_many read it ([]) or after (the
            # values): never another answer.
            print("cleared:", keys == [], "values right:",
                  got in ([], [b"value %d" % i for i in range(n)]))
            """, ["cleared: True values right: True"])

    def test_close_while_another_thread_waits_then_a_write_wakes_it(self):
        # Before: close() deferred the handle's close only while the wait
        # slept; the woken wait() then read the key through the handle its
        # own return had just closed (SIGSEGV in the library).
        run_cases(self, """
            w = tickcache.Cache(NAME)
            for attempt in range(1, 30):
                c = fresh()
                got = []
                entered = threading.Event()
                def waiter():
                    entered.set()
                    try:
                        got.append(c.wait("w%d" % attempt, 0, 60))
                    except ValueError as e:  # closed before the wait began
                        got.append(e)
                t = threading.Thread(target=waiter)
                t.start()
                entered.wait()
                time.sleep(0.05 * attempt)
                c.close()
                junk = [bytearray(160) for _ in range(2000)]  # reuse freed memory
                w.set("w%d" % attempt, b"woke")
                t.join(60)
                if not isinstance(got[0], ValueError):
                    break
            print("alive:", t.is_alive(), "value:", got[0].value)
            outcome("after", lambda: c.get("k"))
            w.close()
            """, ["alive: False value: b'woke'", f"after {CLOSED}"])

    def test_a_signal_handler_that_closes_the_cache_during_a_wait(self):
        # The handler runs between two sleeps of the wait: it closes the
        # cache and writes the key through another handle.  Before: the
        # handle was not busy while the handler ran, so close() freed it and
        # the wait slept on again with it (SIGSEGV).  Now the close waits
        # for the end of the call, which returns the written key.
        run_cases(self, """
            c = fresh()
            w = tickcache.Cache(NAME)
            def handler(sig, frame):
                c.close()
                w.set("late", b"written by the handler")
            signal.signal(signal.SIGALRM, handler)
            signal.setitimer(signal.ITIMER_REAL, 0.1)
            outcome("wait", lambda: print(c.wait("late", 0, 60).value))
            outcome("wait_any", lambda: c.wait_any(0))
            print("closed:", c.closed)
            w.close()
            """, ["b'written by the handler'", "wait -> NoneType", f"wait_any {CLOSED}",
                  "closed: True"])


class TestViewsAfterFork(unittest.TestCase):
    # A view exported when the process forks: in the child it is outside
    # any read section (the parent's ends when the parent leaves its block)
    # and its memory is the parent's handle's mapping, which the child's
    # first call used to unmap.
    BODY = """
        c = small_segment(b"hello" * 40)
        r_fd, w_fd = os.pipe()
        with c.read() as r:
            v = r.peek("k")
            v2 = v[5:15]  # a slice: the same exporter
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    os.read(r_fd, 1)  # the parent has left its section and reused the block
                    if CHILD_USES_CACHE:
                        outcome("child get", lambda: c.get("x0"))
                        c.close()
                    print("child view:", bytes(v[:10]), bytes(v) == b"hello" * 40, bytes(v2),
                          flush=True)
                    outcome("child new export", lambda: memoryview(v.obj))
                    code = 0
                finally:
                    os._exit(code)
            v.release()
            v2.release()
        overwrite(c)
        os.write(w_fd, b"x")
        _, status = os.waitpid(pid, 0)
        print("child exit:", os.waitstatus_to_exitcode(status))
        print("parent:", c.get("k")[:1], c.closed)
        c.close()
        """

    def test_a_view_in_the_child_keeps_its_bytes(self):
        # Before: the child's view read the parent's reused block
        # (b'ZZZZZZZZZZ' instead of b'hellohello').
        run_cases(self, "CHILD_USES_CACHE = False" + textwrap.dedent(self.BODY), [
            "child view: b'hellohello' True b'hellohello'",
            "child new export !! BufferError the read section of this view has ended",
            "child exit: 0", "parent: b'U' False"])

    def test_a_view_in_the_child_survives_its_reattach_and_close(self):
        # Before: the child died of SIGSEGV reading its view after close()
        # (its first call had already unmapped the parent's handle).
        run_cases(self, "CHILD_USES_CACHE = True" + textwrap.dedent(self.BODY), [
            "child get -> bytes", "child view: b'hellohello' True b'hellohello'",
            "child new export !! BufferError the read section of this view has ended",
            "child exit: 0", "parent: b'U' False"])



class TestViewsOfAThreadThatEnds(unittest.TestCase):
    def test_a_view_outlives_the_thread_that_entered_its_section(self):
        # Thread A leaves its block with a view exported (BufferError) and
        # ends; the view lives on in the main thread.  The library gives an
        # exiting thread's reader slot back, which ends its read section.
        # Before: the view then read freed memory, reused by other writes
        # (b'ZZZZ...', another key's value), and the section was never
        # counted as ended (close() raised BufferError for ever).  Now the
        # exiting thread waits, after its Python code is done, until the
        # views of its sections are released, and ends them itself.
        run_cases(self, """
            c = small_segment()
            box = {}
            def a():
                try:
                    with c.read() as r:
                        box["v"] = r.peek("k")
                        box["v2"] = r.peek("k")
                        with c.read() as r2:      # nested, ended at once
                            r2.peek("k").release()
                except BufferError as e:
                    print("A:", e, flush=True)
            t = threading.Thread(target=a)
            t.start()
            t.join()
            v = box.pop("v")
            overwrite(c)
            print("view kept:", bytes(v) == b"A" * 200, flush=True)
            outcome("close with views", c.close)
            v.release()
            outcome("close with one view", c.close)
            box.clear()
            outcome("close", c.close)
            print("closed:", c.closed)
            """, ["A: 2 view(s) of the read section are still exported; the section ends "
                  "when the last is released",
                  "view kept: True",
                  "close with views !! BufferError cannot close cache 'NAME': 1 read section(s) "
                  "open (release their views)",
                  "close with one view !! BufferError cannot close cache 'NAME': 1 read "
                  "section(s) open (release their views)",
                  "close -> NoneType", "closed: True"])


    def test_a_new_thread_never_ends_a_section_of_an_ended_one(self):
        # Thread A leaves its block with a view exported and ends; thread B,
        # made after, enters a section and peeks; then the main thread
        # releases A's view.  Before: A's slot was gone with A, so B could
        # have A's thread id (glibc reuses the stack), and the release left
        # the end of A's section to "its owner's next call": B's next call,
        # which ended B's own section under B's view (it then read freed and
        # reused memory).  Now A, exiting, waits for its view's release and
        # ends its section itself.
        run_cases(self, """
            c = small_segment()
            box = {"v": view_of_an_ended_thread(c)}  # the old code: A's thread is gone
            entered, released = threading.Event(), threading.Event()
            def b():
                with c.read() as r:
                    v = r.peek("k")
                    entered.set()
                    released.wait()
                    c.get("k")  # B's next call
                    overwrite(c)
                    box["b"] = bytes(v) == b"A" * 200
                    v.release()
            t = threading.Thread(target=b)
            t.start()
            entered.wait()
            box.pop("v").release()
            released.set()
            t.join()
            print("B's view kept:", box["b"])
            outcome("close", c.close)
            """, ["B's view kept: True", "close -> NoneType"])

    def test_a_child_releases_a_view_of_a_parked_thread(self):
        # Thread A ends with a view of its section held by the main thread
        # (A waits for its release); the main thread forks, and the child
        # releases its copy of the view.  The child has no thread A: the
        # release must not wait for it (it hung for ever).
        run_cases(self, """
            c = small_segment()
            v = view_of_an_ended_thread(c)  # A waits for its release
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    kept = bytes(v) == b"A" * 200
                    v.release()
                    print("child:", kept, c.get("k")[:1], flush=True)
                    code = 0
                finally:
                    os._exit(code)
            _, status = os.waitpid(pid, 0)
            print("child exit:", os.waitstatus_to_exitcode(status))
            v.release()
            outcome("close", c.close)
            """, ["child: True b'A'", "child exit: 0", "close -> NoneType"])


class TestCarelessArguments(SegmentCase):
    def test_a_non_contiguous_buffer_is_a_type_error(self):
        # Before: BufferError ("memoryview: underlying buffer is not
        # C-contiguous"), which is neither of the argument errors issue 9
        # names, and said nothing of which argument.
        c = self.cache
        strided = memoryview(b"abcdef")[::2]
        with self.assertRaisesRegex(
                TypeError, r"^key must be str or a C-contiguous bytes-like object "
                           r"\(memoryview is not C-contiguous\)$"):
            c.set(strided, b"v")
        for call in (lambda: c.get(strided), lambda: c.get_many(["k", strided]),
                     lambda: strided in c, lambda: c.delete(strided)):
            with self.assertRaisesRegex(TypeError, "^key must be str or a C-contiguous"):
                call()
        with self.assertRaisesRegex(
                TypeError, r"^value must be a C-contiguous bytes-like object "
                           r"\(memoryview is not C-contiguous\)$"):
            c.set("k", strided)
        with self.assertRaisesRegex(
                TypeError, r"^loader must return a C-contiguous bytes-like object "
                           r"\(memoryview is not C-contiguous\)$"):
            c.get_or_load("g", lambda: strided)
        self.assertEqual(c.keys(), [])
        # A contiguous buffer of other items is its bytes.
        arr = array.array("I", [1, 2])
        # (Its version is 1 or 2: the failed get_or_load above took one
        # for its load claim when "g" hashes to the same of the 64 version
        # counters, which the segment's random seed decides.)
        self.assertIn(c.set(arr, memoryview(arr)), (1, 2))
        self.assertEqual(c.get(arr.tobytes()), arr.tobytes())

    def test_get_many_of_a_str_is_a_type_error(self):
        # Before: get_many("abc") read the keys "a", "b" and "c" and
        # returned [None, None, None] with "abc" set.
        c = self.cache
        c.set("abc", b"v")
        for keys in ("abc", b"abc", bytearray(b"abc")):
            with self.assertRaisesRegex(
                    TypeError, "^keys must be an iterable of keys, not one %s key"
                    % type(keys).__name__):
                c.get_many(keys)
        self.assertEqual(c.get_many(["abc"]), [b"v"])
        self.assertEqual(c.get_many(iter(["abc", "x"])), [b"v", None])


    def test_exists_on_a_removed_segment_is_stale_error(self):
        # Before: exists() and `in` returned False for a key that was set
        # (tc_exists folds every error into false), where get() raised
        # StaleError: a dedupe check `if key in cache` read "not seen yet".
        c = self.cache
        c.set("k", b"v")
        self.assertTrue(c.exists("k"))
        self.assertFalse(c.exists("absent"))
        tickcache.unlink(self.name)
        for call in (lambda: c.exists("k"), lambda: "k" in c, lambda: c.exists("absent"),
                     lambda: c.get("k")):
            with self.assertRaisesRegex(tickcache.StaleError, r"^\[Errno 116\] "):
                call()


    def test_init_raced_by_two_threads_opens_one_handle(self):
        # Cache.__init__ releases the GIL while tc_open maps the segment;
        # before, two threads initialising one object both passed the
        # "called twice" check, and the second handle replaced the first,
        # which stayed attached and mapped for ever.  Now the later one is
        # closed and its __init__ raises.
        import threading
        outcomes = []
        for _ in range(40):
            obj = tickcache.Cache.__new__(tickcache.Cache)
            barrier = threading.Barrier(2)
            got = []

            def init():
                barrier.wait()
                try:
                    obj.__init__(self.name)
                    got.append("ok")
                except RuntimeError as e:
                    got.append(str(e))
            ts = [threading.Thread(target=init) for _ in range(2)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            outcomes.append(sorted(got))
            obj.close()
        self.assertEqual(outcomes, [["Cache.__init__ called twice", "ok"]] * 40)
        mine = [a for a in self.cache.attached() if a["pid"] == os.getpid()]
        self.assertEqual([a["handles"] for a in mine], [1])



class TestCachedKeys(SegmentCase):
    def test_arguments_that_json_writes_alike_get_their_own_keys(self):
        # The default key is the arguments' JSON, and JSON writes some
        # different arguments alike: before, the second call of each pair
        # returned the first one's cached result (a wrong value).
        import datetime
        calls = []

        @tickcache.cached(self.cache)
        def f(x):
            calls.append(x)
            return repr(x)
        pairs = [({1: "a"}, {"1": "a"}), ((1, 2), [1, 2]), ({3, 4}, [3, 4]),
                 (datetime.datetime(2024, 1, 1), "2024-01-01T00:00:00"),
                 (b"\x01", {"__bytes__": "01"}), ([(1, 2)], [[1, 2]])]
        for a, b in pairs:
            self.assertEqual((f(a), f(b)), (repr(a), repr(b)))
            self.assertNotEqual(f.cache_key(a), f.cache_key(b))
        self.assertEqual(len(calls), 2 * len(pairs))
        # Read again: every one from the cache.
        for a, b in pairs:
            self.assertEqual((f(a), f(b)), (repr(a), repr(b)))
        self.assertEqual(len(calls), 2 * len(pairs))
        # Plain JSON arguments keep their key.
        self.assertTrue(f.cache_key("AAPL").endswith(':[["AAPL"],{}]'))
        self.assertTrue(f.cache_key({"k": [1, 2.5, None]}).endswith(
            ':[[{"k":[1,2.5,null]}],{}]'))


if __name__ == "__main__":
    unittest.main()
