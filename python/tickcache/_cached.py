# SPDX-License-Identifier: MIT
"""The ``cached`` read-through decorator (needs.md section 3)."""
import dataclasses
import datetime as _dt
import enum
import functools
import hashlib
import inspect
import itertools
import json
import os
import time

from ._json import dumps, loads
from . import _dto

_BYTES = b"\x00"  # JSON text never starts with a NUL byte
_PREFIX = "cached:"
_INV_PREFIX = "cached-inv:"
#: seconds an invalidation is remembered for the loads that were running
#: when it came (a load that outlasts it drops its value too)
INVALIDATION_TTL = 3600
_inv_seq = itertools.count()
_PLAIN = ((str, str.__str__), (int, int.__int__), (float, float.__float__))  # a subclass's value


def _tagged(v):
    """A JSON form of an argument that is the same in every interpreter and
    that no other argument has: JSON writes a tuple as a list, a dict's int
    keys as strings, a set or a datetime as a list or a string would be; those
    are tagged (``{"__tuple__": [...]}``, ...), and so is a dict whose own keys
    could be mistaken for a tag.  An enum member, a str, int or float of a
    subclass and a DTO are tagged with their class's ``module.qualname``:
    ``f(Level.HIGH)`` is not ``f(1)``, whatever the function makes of it."""
    if v is None or type(v) in (str, bool, int, float):
        return v
    if isinstance(v, enum.Enum):
        return {"__enum__": [_name(type(v)), _tagged(v.value)]}
    for base, plain in _PLAIN:
        if isinstance(v, base):
            return {"__type__": [_name(type(v)), plain(v)]}
    if isinstance(v, list):
        return [_tagged(x) for x in v]
    if isinstance(v, tuple):
        return {"__tuple__": [_tagged(x) for x in v]}
    if isinstance(v, dict):
        if all(type(k) is str and not (k.startswith("__") and k.endswith("__"))
               for k in v):
            return {k: _tagged(x) for k, x in v.items()}
        items = [[_tagged(k), _tagged(x)] for k, x in v.items()]
        return {"__dict__": sorted(items, key=_sort_key)}
    if isinstance(v, (bytes, bytearray, memoryview)):
        return {"__bytes__": bytes(v).hex()}
    for cls in (_dt.datetime, _dt.date, _dt.time):  # datetime before its base date
        if isinstance(v, cls):
            return {"__%s__" % cls.__name__: v.isoformat()}
    if isinstance(v, (set, frozenset)):
        return {"__set__": sorted((_tagged(x) for x in v), key=_sort_key)}
    if dataclasses.is_dataclass(v) and not isinstance(v, type) or \
            _dto.is_dto_class(type(v)):
        return {"__dto__": [_name(type(v)), loads(_dto.encode(v))]}
    raise TypeError(f"cannot derive a cache key from an argument of type "
                    f"{type(v).__name__}; pass key= to cached()")


def _name(cls):
    return f"{cls.__module__}.{cls.__qualname__}"


def _sort_key(x):
    return json.dumps(x, sort_keys=True, ensure_ascii=False)


def default_key(qualname, args, kwargs):
    """``cached:<module.qualname>:<JSON of the arguments>``, hashed when it would
    be longer than a key may be.  Arguments that JSON would write alike (a
    tuple and a list, ``{1: x}`` and ``{"1": x}``, a datetime and its ISO
    string, ...) get different keys (``_tagged``)."""
    body = json.dumps([_tagged(list(args)), _tagged(kwargs)], sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False)
    key = f"{_PREFIX}{qualname}:{body}"
    if len(key.encode()) <= 512:
        return key
    digest = hashlib.blake2b(f"{qualname}:{body}".encode(), digest_size=16).hexdigest()
    return f"{_PREFIX}{qualname[:400]}:#{digest}"


def invalidation_key(k):
    """The key whose value ``invalidate`` changes for the cached key ``k``:
    ``cached-inv:`` and a digest of ``k``."""
    kb = k.encode() if isinstance(k, str) else bytes(k)
    return _INV_PREFIX + hashlib.blake2b(kb, digest_size=16).hexdigest()


def invalidation_token():
    """A value no other ``invalidate`` call writes."""
    return b"%d:%d:%d" % (os.getpid(), next(_inv_seq), time.monotonic_ns())


def encode_result(v):
    """A result as stored: bytes-like as a NUL byte and the bytes, anything else
    as JSON."""
    if isinstance(v, (bytes, bytearray, memoryview)):
        return _BYTES + bytes(v)
    return dumps(v)


def decode_result(b):
    """The inverse of ``encode_result``."""
    if b[:1] == _BYTES:
        return b[1:]
    return loads(b)


def cached(cache, ttl=None, key=None, wait=5.0):
    """Decorator: read-through caching of a function's result in ``cache``, with
    single flight across processes (one process computes a missing value, the
    others wait up to ``wait`` seconds for it, then ``TimeoutError``).  The
    computing process's lease lasts ``wait`` seconds (at least 1): when its
    function raises or runs longer, a waiting process takes the lease over
    and computes the value itself, so give ``wait`` more than the function's
    slowest run.

    The function returns bytes or a JSON-able value.  ``ttl`` is in seconds
    (None: the segment's TTL policy for the key, else its default).  ``key``
    is a callable taking the function's arguments and returning the cache key;
    by default the key is ``cached:<module.qualname>:<JSON of the arguments>``,
    the same in every interpreter (arguments must be JSON-able, bytes, dates,
    enums, sets or DTOs; ``f(1)`` and ``f(Level.HIGH)`` get two keys).  The
    function's exceptions reach its caller unchanged and nothing is cached.

    The wrapper has ``invalidate(*args, **kwargs)`` to delete the cached
    value of those arguments (True when there was one) and
    ``cache_key(*args, **kwargs)``.  A load running when ``invalidate`` is
    called, in any process, returns its value to its caller but does not
    keep it (it may predate the update); ``invalidate`` marks that in the
    key ``invalidation_key(key)`` for ``INVALIDATION_TTL`` seconds.  A plain
    ``cache.delete`` of the key does not.  For coroutine functions use
    ``tickcache.aio.cached``."""

    def decorate(fn):
        if inspect.iscoroutinefunction(fn):
            raise TypeError("cached() wraps plain functions; use tickcache.aio.cached "
                            "for coroutine functions")
        qualname = f"{fn.__module__}.{fn.__qualname__}"

        def cache_key(*args, **kwargs):
            if key is not None:
                return key(*args, **kwargs)
            return default_key(qualname, args, kwargs)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            k = cache_key(*args, **kwargs)
            inv = invalidation_key(k)
            seen = []

            def load():
                seen.append(cache.get(inv))
                return encode_result(fn(*args, **kwargs))
            raw = cache.get_or_load(k, load, ttl=ttl, wait=wait)
            if seen and cache.get(inv) != seen[-1]:
                # Invalidated while this call loaded: its value may be older
                # than the update; returned to this call, not kept.
                cache.delete(k)
            return decode_result(raw)

        def invalidate(*args, **kwargs):
            k = cache_key(*args, **kwargs)
            cache.set(invalidation_key(k), invalidation_token(), ttl=INVALIDATION_TTL)
            return cache.delete(k)

        wrapper.cache_key = cache_key
        wrapper.invalidate = invalidate
        return wrapper

    return decorate
