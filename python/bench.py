# SPDX-License-Identifier: MIT
"""bench.py - Python-side latency of tickcache against dict.get, the C call
and Redis (a benchmark, not a test: nothing here fails on a number).

    make bench-python                       # builds, then runs this
    PYTHONPATH=build/python python3 python/bench.py [--runs 5] [--quick]

Cheap calls (tens of ns) are timed in batches of BATCH calls with
time.perf_counter_ns and reported per call; each row is the median over
--runs runs of that run's median batch (p50) and 99th-percentile batch
(p99).  The loop's own cost (an empty `for` over the same range, measured
the same way) is subtracted from every row, so a row is the call alone.
The `set` row includes a lambda's call (set takes two arguments).  The
`len(key)` row is the floor of the 100k rows: the interpreter's loop and
call plus the cache misses of reaching each key object, which the C loop
(keys made on the fly) does not have.  The `add` row times single calls
instead (fresh keys), minus the timer's own median cost, to give a
per-call p99.  The get_many row calls get_many on consecutive groups of
16 of the same random keys and is reported per key (the loop's cost
divided by 16), the batched read that overlaps the keys' cache misses.  Redis runs as redis-server on a
unix socket started here (skipped when redis-server is missing), read with
a minimal RESP client on a raw socket - the least a Python client can
spend.  The C figures are shm-bench's tc_get p50 (-k 100000 -d uniform -s 64)
from $BIN, run by this script: each call timed alone (no --batch; the
uniform get p50 of docs/benchmarks.md, and the one the uniform target is
measured against: its misses, like a Python loop's, do not overlap), and
the same timed 64 at a time (--batch 64), whose consecutive calls overlap
their misses as get_many's keys do.  Both run in every run, right after
that run's Python uniform row (not with --quick): the uniform target is
judged on the median of the runs' own differences, Python minus C, so that
the machine's speed, which moves over minutes on a shared guest, is the
same on both sides of each difference.
"""
import argparse
import dataclasses
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

# The package's sources beside this script have no extension: import the
# built one from PYTHONPATH (or the installed one) instead.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]

import tickcache  # noqa: E402
from tickcache.strategy import StrategyCache  # noqa: E402

BATCH = 1000
VALUE = bytes(range(64))


def batches(fn, arg, nbatch):
    """Per-call ns of fn(arg) for nbatch batches of BATCH calls."""
    rng = range(BATCH)
    pc = time.perf_counter_ns
    out = []
    for _ in range(nbatch):
        t0 = pc()
        for _ in rng:
            fn(arg)
        out.append((pc() - t0) / BATCH)
    return out


def batches_keys(fn, keys, nbatch, per=1):
    """Per-item ns of fn(k) over consecutive slices of keys, each k standing
    for PER items (a group of PER keys for get_many)."""
    pc = time.perf_counter_ns
    out = []
    n = len(keys)
    calls = BATCH // per
    for b in range(nbatch):
        i = (b * calls) % (n - calls)
        chunk = keys[i:i + calls]
        t0 = pc()
        for k in chunk:
            fn(k)
        out.append((pc() - t0) / (calls * per))
    return out


GROUP = 16


def empty_loop(nbatch):
    rng = range(BATCH)
    pc = time.perf_counter_ns
    out = []
    for _ in range(nbatch):
        t0 = pc()
        for _ in rng:
            pass
        out.append((pc() - t0) / BATCH)
    return out


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


class Redis:
    """A minimal RESP client on a unix socket."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect(path)
        self.f = self.s.makefile("rb")

    def cmd(self, *args):
        parts = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.s.sendall(b"".join(parts))
        line = self.f.readline()
        if line[:1] == b"$":
            n = int(line[1:])
            if n < 0:
                return None
            data = self.f.read(n + 2)
            return data[:-2]
        return line.rstrip()

    def get(self, key):
        return self.cmd(b"GET", key)


def start_redis(tmp):
    exe = shutil.which("redis-server")
    if not exe:
        return None, None
    sock = os.path.join(tmp, "redis.sock")
    p = subprocess.Popen([exe, "--port", "0", "--unixsocket", sock, "--save", "",
                          "--appendonly", "no", "--daemonize", "no"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        if os.path.exists(sock):
            try:
                r = Redis(sock)
                r.cmd(b"PING")
                return p, r
            except OSError:
                pass
        time.sleep(0.02)
    p.kill()
    return None, None


def c_get_p50(nkeys, batch=64):
    """shm-bench's tc_get p50 over NKEYS uniform keys: timed BATCH calls at a
    time (their cache misses free to overlap), or call by call for BATCH 1
    (each call's chain of misses whole, as in a Python loop)."""
    bench = os.path.join(os.environ.get("BIN", "build/bin"), "shm-bench")
    if not os.access(bench, os.X_OK):
        return None
    argv = [bench, "-k", str(nkeys), "-d", "uniform", "-s", "64", "-n", "2000000", "--json"]
    if batch > 1:
        argv[-1:-1] = ["--batch", str(batch)]
    out = subprocess.run(argv, capture_output=True, text=True)
    if out.returncode:
        return None
    try:
        doc = json.loads(out.stdout)
    except ValueError:
        return None

    def find(o):
        if isinstance(o, dict):
            for k in ("p50_ns", "p50"):
                if k in o and isinstance(o[k], (int, float)):
                    return o[k]
            for v in o.values():
                r = find(v)
                if r is not None:
                    return r
        if isinstance(o, list):
            for v in o:
                r = find(v)
                if r is not None:
                    return r
        return None
    return find(doc)


def dto_classes():
    try:
        import pydantic

        class Tick(pydantic.BaseModel):
            f0: float; f1: float; f2: float; f3: float; f4: float  # noqa: E702
            f5: int; f6: int; f7: str; f8: str; f9: bool  # noqa: E702
        return Tick, "pydantic"
    except ImportError:
        @dataclasses.dataclass
        class Tick:
            f0: float; f1: float; f2: float; f3: float; f4: float  # noqa: E702
            f5: int; f6: int; f7: str; f8: str; f9: bool  # noqa: E702
        return Tick, "dataclass"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="fewer batches (a smoke run)")
    ap.add_argument("--out", help="also write the results as markdown to this file")
    args = ap.parse_args()
    load_before = os.getloadavg()
    t_start = time.time()
    nb = 200 if args.quick else 2000
    name = f"py-bench-{os.getpid()}"
    nkeys = 100_000
    c = tickcache.Cache(name, create=True, max_entries=nkeys * 2, memory="64M")
    rows = {}
    tmp = tempfile.mkdtemp(prefix="tc-pybench.")
    redis_p, redis = start_redis(tmp)
    try:
        hot = "tradecore:market:quote:AAPL"
        c.set(hot, VALUE)
        big = "tradecore:market:book:AAPL"
        c.set(big, bytes(2000))
        d = {hot: VALUE}
        keys = [f"k:{i:08d}" for i in range(nkeys)]
        for k in keys:
            c.set(k, VALUE)
            d[k] = VALUE
        rnd = random.Random(1)
        seq = [keys[rnd.randrange(nkeys)] for _ in range(200_000)]
        groups = [seq[i:i + GROUP] for i in range(0, len(seq), GROUP)]
        if redis:
            redis.cmd(b"SET", hot, VALUE)
        add_keys = [f"mark:{i}" for i in range(200_000)]
        Tick, dto_kind = dto_classes()
        ticks = [Tick(f0=1.0, f1=2.0, f2=3.0, f3=4.0, f4=5.0, f5=6, f6=7, f7="AAPL", f8="XNAS",
                      f9=True) for _ in range(10)]
        sc = StrategyCache(c)
        sc.clear()

        c_one, c_diff, c_b64 = [], [], []

        def record(label, xs, loop):
            rows.setdefault(label, []).append((pct(xs, 50) - loop, pct(xs, 99) - loop))

        for _ in range(args.runs):
            loop = pct(empty_loop(nb), 50)
            record("dict.get, hot key", batches(d.get, hot, nb), loop)
            record("Cache.get, hot key (bytes)", batches(c.get, hot, nb), loop)
            record("Cache.get, miss", batches(c.get, "tradecore:market:quote:NONE", nb), loop)
            record("len(key), 100k keys uniform (touching the key objects)",
                   batches_keys(len, seq, nb), loop)
            record("dict.get, 100k keys uniform", batches_keys(d.get, seq, nb), loop)
            record("Cache.get, 100k keys uniform", batches_keys(c.get, seq, nb), loop)
            if not args.quick:
                # The C figures beside this run's Python row, so that a
                # change in the machine's speed between runs (a shared
                # guest: the C p50 alone moves by 100 ns over minutes)
                # falls on both sides of each run's difference.
                one = c_get_p50(nkeys, 1)
                if one is not None:
                    c_one.append(one)
                    c_diff.append(rows["Cache.get, 100k keys uniform"][-1][0] - one)
                b64 = c_get_p50(nkeys)
                if b64 is not None:
                    c_b64.append(b64)
            record(f"Cache.get_many of {GROUP}, 100k keys uniform (per key)",
                   batches_keys(c.get_many, groups, nb, GROUP), loop / GROUP)
            record("Cache.get, 2000-byte value", batches(c.get, big, nb), loop)
            record("Cache.set, hot key (returns the version)",
                   batches(lambda k: c.set(k, VALUE), hot, max(2, nb // 4)), loop)
            if redis:
                record("Redis GET (unix socket, raw RESP)",
                       batches(redis.get, hot, max(2, nb // 50)), loop)
            # add: single calls, fresh keys.
            pc = time.perf_counter_ns
            tover = statistics.median(-(pc() - pc()) for _ in range(10000))
            c.purge("mark:*")
            lat = []
            for k in add_keys[:nb * 20]:
                t0 = pc()
                c.add(k, b"1", 3600)
                lat.append(pc() - t0 - tover)
            rows.setdefault("Cache.add (dedupe mark), per call", []).append(
                (pct(lat, 50), pct(lat, 99)))
            # set_dto + get_dtos of ten models per tick, against a dict of lists.
            tl = []
            for i in range(nb // 10):
                sc.start_run(i)
                t0 = pc()
                for t in ticks:
                    sc.set_dto("ticks", t)
                got = sc.get_dtos("ticks", Tick)
                tl.append(pc() - t0)
                sc.clear()
            assert got == ticks
            rows.setdefault(f"10 x set_dto + get_dtos ({dto_kind}, per tick)", []).append(
                (pct(tl, 50), pct(tl, 99)))
            dl = []
            for i in range(nb // 10):
                store = {}
                t0 = pc()
                for t in ticks:
                    store.setdefault("ticks", []).append(t)
                got = [x for x in store.get("ticks", []) if isinstance(x, Tick) or
                       (_ for _ in ()).throw(TypeError())]
                dl.append(pc() - t0)
            rows.setdefault("10 x append + typed read, in-process dict (per tick)", []).append(
                (pct(dl, 50), pct(dl, 99)))
        cp50 = statistics.median(c_b64) if c_b64 else None
        cp50_one = statistics.median(c_one) if c_one else None
        diff_one = statistics.median(c_diff) if c_diff else None
    finally:
        c.close()
        tickcache.unlink(name)
        if redis_p:
            redis_p.kill()
            redis_p.wait()
        shutil.rmtree(tmp, ignore_errors=True)

    med = {k: (statistics.median(a for a, _ in v), statistics.median(b for _, b in v))
           for k, v in rows.items()}
    load_after = os.getloadavg()
    out = []
    out.append(f"CPython {sys.version.split()[0]}; {args.runs} runs; batches of {BATCH} calls; "
               "64-byte values; the empty loop's cost subtracted.")
    out.append(f"Load average before: {load_before[0]:.2f}, after: {load_after[0]:.2f} "
               f"({os.cpu_count()} CPUs); run time {time.time() - t_start:.0f} s.")
    out.append("")
    out.append("| call | p50 ns | p99 ns |")
    out.append("|---|---:|---:|")
    for k, (a, b) in med.items():
        out.append(f"| {k} | {a:.1f} | {b:.1f} |")
    base = med["dict.get, hot key"][0]
    hotc = med["Cache.get, hot key (bytes)"][0]
    out.append("")
    out.append(f"- hot get / dict.get (p50): {hotc / base:.2f}x")
    out.append(f"- miss / dict.get (p50): {med['Cache.get, miss'][0] / base:.2f}x")
    if cp50 is not None:
        u = med["Cache.get, 100k keys uniform"][0]
        touch = med['len(key), 100k keys uniform (touching the key objects)'][0]
        if cp50_one is not None:
            # The target's C figure: tc_get's p50 with each call timed alone,
            # as docs/benchmarks.md's uniform get p50 is, and as a Python
            # loop calls it (one call's misses at a time).
            out.append(f"- 100k keys uniform (target: the C tc_get p50 + 60 ns): Python get "
                       f"{u:.1f} ns, C tc_get p50 {cp50_one:.1f} ns (shm-bench, each call "
                       f"timed alone, beside each run's Python row; medians): Python minus C "
                       f"{diff_one:+.1f} ns, the median of the runs' own differences ("
                       + ", ".join(f"{d:+.1f}" for d in c_diff) + "); of which touching "
                       f"the key objects (len) {touch:.1f} ns (the hot get: {hotc:.1f} ns)")
        out.append(f"- 100k keys uniform: C tc_get timed 64 at a time (--batch 64: "
                   f"consecutive calls' misses overlap, which a loop of single calls does "
                   f"not get) {cp50:.1f} ns: the Python get is that {u - cp50:+.1f} ns")
        m = med[f"Cache.get_many of {GROUP}, 100k keys uniform (per key)"][0]
        out.append(f"- 100k keys uniform, get_many of {GROUP}: {m:.1f} ns per key, "
                   f"{m - cp50:+.1f} ns against the C tc_get timed 64 at a time")
    if "Redis GET (unix socket, raw RESP)" in med:
        r = med["Redis GET (unix socket, raw RESP)"][0]
        out.append(f"- Redis GET / hot get (p50): {r / hotc:.0f}x")
    tick = [k for k in med if k.startswith("10 x set_dto")][0]
    out.append(f"- set_dto + get_dtos per tick / in-process dict (p50): "
               f"{med[tick][0] / med['10 x append + typed read, in-process dict (per tick)'][0]:.0f}x")
    text = "\n".join(out)
    print(text)
    if args.out:
        try:
            commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                    text=True).stdout.strip()
        except OSError:
            commit = "?"
        with open(args.out, "w") as f:
            f.write("# tickcache Python benchmarks\n\n")
            f.write(f"Generated by `make bench-python` (python/bench.py) on "
                    f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, commit {commit}; "
                    "do not edit by hand. Method: the docstring of python/bench.py.\n\n")
            f.write(text + "\n")


if __name__ == "__main__":
    main()
