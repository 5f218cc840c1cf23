# SPDX-License-Identifier: MIT
"""Every call of the extension, error paths included, in a loop: for leak and
reference-count checks.

    PYTHONPATH=build/python PYTHONMALLOC=malloc valgrind --leak-check=full \\
        python3 python/tests/leakcheck.py 200

exercise() is also run by test_leaks.py, which compares reference counts and
the interpreter's allocated blocks before and after many rounds.
"""
import os
import sys
import tempfile

import tickcache
from tickcache import aio, dedupe, strategy  # noqa: F401  (their imports too)


class _Boom(Exception):
    pass


def _raise():
    raise _Boom()


def exercise(c, rounds, objs):
    """ROUNDS rounds of every call on cache C with the objects of OBJS (a dict
    the caller keeps to check their reference counts)."""
    key, val, dflt, loader = objs["key"], objs["val"], objs["default"], objs["loader"]
    bkey, bval = objs["bkey"], objs["bval"]
    tmp = objs["tmp"]
    sc = strategy.StrategyCache(c)
    for i in range(rounds):
        c.set(key, val, ttl=60, type=3)
        c.set(bkey, bval)
        c.get(key)
        c.get(bkey)
        c.get("missing", dflt)
        c.get(key=key, default=dflt)
        c.get_item(key)
        c.get_item("missing")
        c.get_many([key, "missing", bkey])
        c.add(key, val)
        c.cas(key, val, 1)
        c.exists(key)
        key in c  # noqa: B015
        c.expire(key, 100)
        c.incr("n", 2, ttl=10)
        c.rate_limit("r", 10, 60)
        c.keys("k*")
        list(c.scan())
        c.get_or_load(key, loader)
        c.delete("gl")
        c.get_or_load("gl", loader, ttl=5, wait=1)
        c.ttl_policy("p:", 5)
        c.ttl_policies()
        c.ttl_policy("p:", None)
        c.stats()
        c.info()
        c.readers()
        c.attached()
        with c.read() as r:
            v = r.peek(key)
            bytes(v)
            v.release()
            r.peek("missing")
        c.set_json("j", {"a": [1, 2]})
        c.get_json("j")
        c.save(os.path.join(tmp, "snap"))
        c.load(os.path.join(tmp, "snap"), replace=True)
        sc.start_run(i)
        sc.set_dto("d", _Dto(i))
        sc.get_dtos("d", _Dto)
        sc.has_dto("d")
        sc.get_run_anchor()
        sc.clear()
        c.purge("zz*")
        c.delete(key)
        for bad in (lambda: c.get(5), lambda: c.set(key, "s"), lambda: c.set("k" * 600, val),
                    lambda: c.set(key, val, ttl=-1), lambda: c.incr("j"),
                    lambda: c.get_or_load("boom", _raise), lambda: c.get_or_load("x", 5),
                    lambda: c.get_or_load("s", lambda: "str"), lambda: c.load(tmp + "/none"),
                    lambda: c.load_ttl_policies(tmp + "/none"), lambda: c.set(key, val, zz=1),
                    lambda: c._run_anchor(), lambda: c._dto_append("d", 1, b""),
                    lambda: c.keys("a\0"), lambda: c.ttl_policy("", 1),
                    lambda: tickcache.Cache("bad/name"), lambda: tickcache.unlink("gone-xyz")):
            try:
                bad()
            except (TypeError, ValueError, OSError, _Boom):
                pass
        with_view_left_open(c, key)


def with_view_left_open(c, key):
    c.set(key, b"x")
    try:
        with c.read() as r:
            v = r.peek(key)
    except BufferError:
        pass
    v.release()


import dataclasses  # noqa: E402


@dataclasses.dataclass
class _Dto:
    n: int


def make_objs(tmp):
    return {"key": "key:" + "x" * 20, "val": b"v" * 100, "default": object(),
            "loader": lambda: b"loaded", "bkey": bytearray(b"bk"), "bval": memoryview(b"bv"),
            "tmp": tmp}


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    name = f"py-leak-{os.getpid()}"
    with tempfile.TemporaryDirectory() as tmp:
        with tickcache.Cache(name, create=True, max_entries=1024, memory="4M") as c:
            try:
                exercise(c, n, make_objs(tmp))
            finally:
                tickcache.unlink(name)
    print(f"leakcheck: {n} rounds done")


if __name__ == "__main__":
    main()
