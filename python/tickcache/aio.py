# SPDX-License-Identifier: MIT
"""asyncio facade: ``AsyncCache`` offers a Cache's calls as coroutines.

The calls that take nanoseconds (get, set, add, ...) run directly in the
coroutine: handing them to a thread would cost a thousand times the call.
What may wait - ``wait`` and ``wait_any`` when nothing newer is there yet,
``save``, ``load`` and ``load_ttl_policies`` (file I/O) - runs in the
loop's executor, and ``get_or_load`` on a miss in threads of its own, so
the event loop is never blocked; ``get_or_load`` accepts coroutine
functions as loaders and runs them on the event loop.

A cancelled call leaves nothing behind for long: a ``wait`` or
``wait_any`` sleeps in its executor thread in slices of ``_SLICE`` seconds
and looks between two for its coroutine's cancellation, so that
``asyncio.wait_for`` around a wait (or any cancel) gives the thread back
within a slice (a single long sleep held it until a write or the timeout:
a few cancelled waits filled the executor and ``asyncio.run`` never
returned); a slice's end costs no writer anything (the flag it leaves on
the futex word is the one the next slice sleeps on).  A ``get_or_load``'s
thread ends when the value comes (within ``wait`` seconds) or its loader
ends; a coroutine loader is not cancelled with its caller (the value it
loads is kept for the others).
"""
import asyncio
import contextvars
import functools
import inspect
import math
import operator
import threading
import time
import weakref

from ._cached import (INVALIDATION_TTL, decode_result, default_key, encode_result,
                      invalidation_key, invalidation_token)

__all__ = ["AsyncCache", "cached"]

_MISSING = object()

_SLICE = 0.1  # seconds an executor thread waits before it looks for a cancel


_TIMEOUT_MAX_MS = 2**53  # the largest timeout Cache.wait takes, in ms


def _check_timeout(timeout):
    """Refuse what ``Cache.wait`` refuses, with its words: a wait here never
    hands TIMEOUT to the library whole."""
    if timeout is None:
        return
    if isinstance(timeout, float):
        if math.isnan(timeout):
            raise ValueError("timeout is NaN")
        if timeout < 0:
            raise ValueError(f"timeout must not be negative, got {timeout!r}")
        if not math.ceil(timeout * 1000.0) <= _TIMEOUT_MAX_MS:
            raise ValueError(f"timeout of {timeout!r} seconds is too large")
        return
    if isinstance(timeout, bool) or not hasattr(type(timeout), "__index__"):
        raise TypeError("timeout must be int or float seconds or None, not "
                        f"{type(timeout).__name__}")
    v = operator.index(timeout)
    if v < 0:
        raise ValueError(f"timeout must not be negative, got {timeout!r}")
    if v > _TIMEOUT_MAX_MS // 1000:
        raise ValueError(f"timeout of {timeout!r} seconds is too large")


def _sliced(call, timeout, cancelled, gone=None):
    """``call(t)`` for slices t of TIMEOUT seconds (None: no limit) until it
    returns something other than None, the time is up, ``cancelled`` is set,
    or ``gone()`` says a None was the key's absence, not a slice's end."""
    end = None if timeout is None else time.monotonic() + timeout
    while True:
        t = _SLICE if end is None else max(0.0, min(_SLICE, end - time.monotonic()))
        r = call(t)
        if r is not None or cancelled.is_set():
            return r
        if end is not None and time.monotonic() >= end:
            return None
        if gone is not None and gone():
            return None


# True in the tasks that run coroutine loaders of get_or_load.
_IN_LOADER = contextvars.ContextVar("tickcache_aio_in_loader", default=False)


def _call_soon(loop, fn, *args):
    """loop.call_soon_threadsafe, from a thread that may outlive the loop."""
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:  # the loop is closed: nobody waits any more
        pass


class AsyncCache:
    """Wrap ``cache`` (a ``tickcache.Cache``) for asyncio code.  ``executor``
    (default: the loop's) runs ``wait``, ``wait_any`` and the file calls;
    ``get_or_load`` runs its misses in threads of its own, at most
    ``max_loads`` at once per event loop (each takes a reader slot of the
    segment), not counting the calls a coroutine loader makes (its caller's
    thread holds one while it waits): a loader may use the loop's executor
    or call ``get_or_load`` itself.  Given an ``executor``, ``get_or_load``
    runs in it instead, and a coroutine loader must not wait for that
    executor."""

    def __init__(self, cache, executor=None, max_loads=8):
        if isinstance(max_loads, bool) or not isinstance(max_loads, int) or max_loads < 1:
            raise ValueError(f"max_loads must be an int >= 1, got {max_loads!r}")
        self.cache = cache
        self.executor = executor
        self.max_loads = max_loads
        self._loads = weakref.WeakKeyDictionary()  # event loop -> its Semaphore

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        self.cache.close()

    def close(self):
        """Close the wrapped cache."""
        self.cache.close()

    async def get(self, key, default=None):
        """``Cache.get``."""
        return self.cache.get(key, default)

    async def get_item(self, key):
        """``Cache.get_item``."""
        return self.cache.get_item(key)

    async def get_many(self, keys):
        """``Cache.get_many``."""
        return self.cache.get_many(keys)

    async def set(self, key, value, ttl=None, type=0):
        """``Cache.set``."""
        return self.cache.set(key, value, ttl, type)

    async def add(self, key, value, ttl=None, type=0):
        """``Cache.add``."""
        return self.cache.add(key, value, ttl, type)

    async def cas(self, key, value, version, ttl=None, type=0):
        """``Cache.cas``."""
        return self.cache.cas(key, value, version, ttl, type)

    async def delete(self, key):
        """``Cache.delete``."""
        return self.cache.delete(key)

    async def exists(self, key):
        """``Cache.exists``."""
        return self.cache.exists(key)

    async def expire(self, key, ttl):
        """``Cache.expire``."""
        return self.cache.expire(key, ttl)

    async def incr(self, key, delta=1, ttl=None):
        """``Cache.incr``."""
        return self.cache.incr(key, delta, ttl)

    async def keys(self, pattern="*"):
        """``Cache.keys``."""
        return self.cache.keys(pattern)

    async def purge(self, pattern):
        """``Cache.purge``."""
        return self.cache.purge(pattern)

    async def rate_limit(self, key, limit, window):
        """``Cache.rate_limit``."""
        return self.cache.rate_limit(key, limit, window)

    async def set_json(self, key, obj, ttl=None):
        """``Cache.set_json``."""
        return self.cache.set_json(key, obj, ttl)

    async def get_json(self, key, default=None):
        """``Cache.get_json``."""
        return self.cache.get_json(key, default)

    async def stats(self):
        """``Cache.stats``."""
        return self.cache.stats()

    async def health(self):
        """``Cache.health``."""
        return self.cache.health()

    async def ttl_policy(self, prefix, ttl):
        """``Cache.ttl_policy``."""
        return self.cache.ttl_policy(prefix, ttl)

    async def ttl_policies(self):
        """``Cache.ttl_policies``."""
        return self.cache.ttl_policies()

    async def _in_executor(self, fn, *args, **kwargs):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(fn, *args, **kwargs))

    async def _sleep_in_executor(self, call, timeout, gone=None):
        cancelled = threading.Event()
        try:
            return await self._in_executor(_sliced, call, timeout, cancelled, gone)
        finally:
            cancelled.set()  # cancelled, or done: the thread stops at its next slice

    async def wait(self, key, version=0, timeout=None):
        """``Cache.wait``: at once when KEY is already newer than VERSION, else
        the sleep runs in the executor.  Cancelling the coroutine gives the
        executor thread back within ``_SLICE`` seconds."""
        _check_timeout(timeout)
        item = self.cache.wait(key, version, 0)
        if item is not None or timeout == 0:
            return item
        c = self.cache
        # VERSION > 0: a None is the key gone (deleted or expired) when it is absent.
        gone = (lambda: not c.exists(key)) if version else None
        return await self._sleep_in_executor(lambda t: c.wait(key, version, t), timeout, gone)

    async def wait_any(self, seq=0, timeout=None):
        """``Cache.wait_any``: at once when something changed since SEQ, else
        the sleep runs in the executor (cancelling: as ``wait``)."""
        _check_timeout(timeout)
        new = self.cache.wait_any(seq, 0)
        if new is not None or timeout == 0:
            return new
        c = self.cache
        return await self._sleep_in_executor(lambda t: c.wait_any(seq, t), timeout)

    async def load_ttl_policies(self, path):
        """``Cache.load_ttl_policies``, in the executor."""
        return await self._in_executor(self.cache.load_ttl_policies, path)

    async def save(self, path):
        """``Cache.save``, in the executor."""
        return await self._in_executor(self.cache.save, path)

    async def load(self, path, replace=False):
        """``Cache.load``, in the executor."""
        return await self._in_executor(self.cache.load, path, replace)

    async def get_or_load(self, key, loader, ttl=None, wait=5.0, type=0):
        """``Cache.get_or_load`` without blocking the event loop: a hit returns at
        once; a miss (the single-flight wait, the loader) runs in a thread of
        its own.  ``loader`` may be a plain function or return an awaitable
        (a coroutine function), which then runs on this event loop.  The
        loader's exception reaches the caller unchanged."""
        v = self.cache.get(key, _MISSING)
        if v is not _MISSING:
            return v
        loop = asyncio.get_running_loop()
        if self.executor is not None:
            def in_executor():
                r = loader()
                if inspect.isawaitable(r):
                    return asyncio.run_coroutine_threadsafe(_awaited(r), loop).result()
                return r
            return await self._in_executor(self.cache.get_or_load, key, in_executor, ttl=ttl,
                                           wait=wait, type=type)
        # A call made by a coroutine loader of this AsyncCache does not wait
        # for max_loads: its caller's thread holds one while it waits.
        sem = None
        if not _IN_LOADER.get():
            sem = self._loads.get(loop)
            if sem is None:
                sem = self._loads[loop] = asyncio.Semaphore(self.max_loads)
            await sem.acquire()
        fut = loop.create_future()

        def settle(ok, v):  # on the loop
            if sem is not None:
                sem.release()
            if fut.done():
                return
            if ok:
                fut.set_result(v)
                return
            try:
                fut.set_exception(v)
            except TypeError:  # StopIteration, which a Future refuses
                exc = RuntimeError("the loader raised StopIteration")
                exc.__cause__ = v
                fut.set_exception(exc)

        def sync_loader():
            r = loader()
            if inspect.isawaitable(r):
                # The task inherits this thread's context: _IN_LOADER is set.
                _IN_LOADER.set(True)
                return asyncio.run_coroutine_threadsafe(_awaited(r), loop).result()
            return r

        def run():
            try:
                v = self.cache.get_or_load(key, sync_loader, ttl=ttl, wait=wait, type=type)
            except BaseException as e:  # the loader's own, unchanged
                _call_soon(loop, settle, False, e)
            else:
                _call_soon(loop, settle, True, v)
        try:
            threading.Thread(target=run, name="tickcache-get_or_load", daemon=True).start()
        except BaseException:
            if sem is not None:
                sem.release()
            raise
        return await fut


async def _awaited(aw):
    return await aw


def cached(acache, ttl=None, key=None, wait=5.0):
    """``tickcache.cached`` for coroutine functions, on an ``AsyncCache``: the
    result of ``await fn(...)`` is cached with single flight across
    processes, and waits never block the event loop.  ``invalidate`` is a
    coroutine; a load running when it is called does not keep its value
    (as in ``tickcache.cached``)."""

    def decorate(fn):
        if not inspect.iscoroutinefunction(fn):
            raise TypeError("aio.cached() wraps coroutine functions; use tickcache.cached")
        qualname = f"{fn.__module__}.{fn.__qualname__}"

        def cache_key(*args, **kwargs):
            if key is not None:
                return key(*args, **kwargs)
            return default_key(qualname, args, kwargs)

        @functools.wraps(fn)
        async def wrapper(*args, **kwargs):
            k = cache_key(*args, **kwargs)
            inv = invalidation_key(k)
            seen = []

            async def load():
                seen.append(await acache.get(inv))
                return encode_result(await fn(*args, **kwargs))
            raw = await acache.get_or_load(k, load, ttl=ttl, wait=wait)
            if seen and await acache.get(inv) != seen[-1]:
                await acache.delete(k)  # invalidated while loading: not kept
            return decode_result(raw)

        wrapper.cache_key = cache_key

        async def invalidate(*args, **kwargs):
            k = cache_key(*args, **kwargs)
            await acache.set(invalidation_key(k), invalidation_token(), ttl=INVALIDATION_TTL)
            return await acache.delete(k)

        wrapper.invalidate = invalidate
        return wrapper

    return decorate
