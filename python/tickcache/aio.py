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
``wait_any`` sleeps in slices of ``SLICE`` seconds and its thread ends at
the next one; a ``get_or_load``'s thread ends when the value comes (within
``wait`` seconds) or its loader ends; a coroutine loader is not cancelled
with its caller (the value it loads is kept for the others).
"""
import asyncio
import contextvars
import functools
import inspect
import operator
import threading
import time
import weakref

from ._cached import (INVALIDATION_TTL, decode_result, default_key, encode_result,
                      invalidation_key, invalidation_token)

__all__ = ["AsyncCache", "cached"]

_MISSING = object()

#: seconds a wait sleeps in the kernel before it looks whether its caller
#: was cancelled (a write wakes it at once)
SLICE = 0.1

# True in the tasks that run coroutine loaders of get_or_load.
_IN_LOADER = contextvars.ContextVar("tickcache_aio_in_loader", default=False)


def _seconds(timeout):
    """TIMEOUT checked as Cache.wait checks it: None, or seconds >= 0."""
    if timeout is None:
        return None
    if isinstance(timeout, bool):
        raise TypeError("timeout must be a number of seconds, not bool")
    if not isinstance(timeout, (int, float)):
        try:
            timeout = operator.index(timeout)  # as Cache.wait takes it
        except TypeError:
            raise TypeError(f"timeout must be a number of seconds, not "
                            f"{type(timeout).__name__}") from None
    if timeout != timeout:
        raise ValueError("timeout is NaN")
    if timeout < 0:
        raise ValueError(f"timeout must not be negative, got {timeout!r}")
    return timeout


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

    async def _sliced(self, call, timeout, done):
        """CALL(seconds) repeated in the executor, a slice at a time, until
        DONE(result) or TIMEOUT; stops at the next slice once cancelled."""
        stop = threading.Event()

        def sleep():
            end = None if timeout is None else time.monotonic() + timeout
            while not stop.is_set():
                left = SLICE if end is None else min(SLICE, end - time.monotonic())
                if left <= 0:
                    return None
                r = call(left)
                if done(r):
                    return r
            return None
        try:
            return await self._in_executor(sleep)
        finally:
            stop.set()

    async def wait(self, key, version=0, timeout=None):
        """``Cache.wait``: at once when KEY is already newer than VERSION, else
        the sleep runs in the executor (in slices of ``SLICE`` seconds, so
        that a cancelled wait's thread ends within one)."""
        timeout = _seconds(timeout)
        item = self.cache.wait(key, version, 0)
        if item is not None or timeout == 0:
            return item
        cache = self.cache
        # None from a slice: its timeout, or (version > 0) the key is gone.
        return await self._sliced(lambda t: cache.wait(key, version, t), timeout,
                                  lambda r: r is not None or
                                  (version > 0 and not cache.exists(key)))

    async def wait_any(self, seq=0, timeout=None):
        """``Cache.wait_any``: at once when something changed since SEQ, else
        the sleep runs in the executor (cancelling: as ``wait``)."""
        timeout = _seconds(timeout)
        new = self.cache.wait_any(seq, 0)
        if new is not None or timeout == 0:
            return new
        cache = self.cache
        return await self._sliced(lambda t: cache.wait_any(seq, t), timeout,
                                  lambda r: r is not None)

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
