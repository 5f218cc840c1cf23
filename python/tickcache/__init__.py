# SPDX-License-Identifier: MIT
"""tickcache: a lock-free shared-memory cache for the processes of one host.

The ``Cache`` class is a hand-written C extension over libtickcache: a hot
``get`` costs about what a ``dict.get`` does, and every process that opens
the same segment name sees the same keys.  The modules beside it carry the
users' own protocols on top of it:

* ``tickcache.strategy`` - ``StrategyCache``, point-in-time runs of typed DTOs;
* ``tickcache.dedupe`` - ``CandleCache`` and ``SignalPublishCache``;
* ``tickcache.cached`` - a read-through decorator with single flight;
* ``tickcache.aio`` - ``AsyncCache``, the calls as coroutines for asyncio.

Example::

    import tickcache
    with tickcache.Cache("demo", create=True, memory="16M") as c:
        c.set("tradecore:market:quote:AAPL", b"189.5", ttl=5)
        c.get("tradecore:market:quote:AAPL")        # b'189.5'
"""
import itertools as _itertools
import os as _os

from . import _tickcache
from ._tickcache import (  # noqa: F401  (re-exported)
    BusyError,
    CacheNotConfiguredError,
    CorruptError,
    Error,
    FullError,
    GeometryError,
    InvalidDTOTypeError,
    Item,
    KEY_MAX,
    LIB_VERSION,
    NAME_MAX,
    POLICY_PREFIX_MAX,
    ReadSection,
    StaleError,
    TC_ECONFLICT,
    TC_ECORRUPT,
    TC_EGEOMETRY,
    TC_ENORUN,
    TC_ETYPE,
    TC_EVERSION,
    TYPE_COUNTER,
    VALUE_MAX,
    name_valid,
    now,
    strerror,
    unlink,
)
from ._json import dumps as _dumps, loads as _loads
from ._dto import register_dto, type_id_of  # noqa: F401

__version__ = LIB_VERSION

#: Type id that set_json() stores its values with ("JSON" in ASCII).
TYPE_JSON = 0x4A534F4E

_SHM_DIR = "/dev/shm"
_SHM_PREFIX = "tickcache."

_STAT_ORDER = (
    "name", "layout_version", "hits", "misses", "hit_rate", "sets", "adds", "deletes",
    "expirations", "evictions", "errors", "ops", "clears", "keys_deleted", "lat_samples",
    "lat_mean_ns", "slow_ops", "slow_threshold_ns", "entries", "max_entries", "index_slots",
    "index_fill", "memory_bytes", "memory_used", "memory_retired", "memory_carved", "merges",
    "max_readers", "readers", "tool_readers", "readers_other", "readers_dead", "attached",
    "attached_other", "epoch", "epoch_lag", "created_ms", "uptime_ms", "segment_bytes", "mode",
    "default_ttl_ms", "eviction", "checksums", "checksum_failures", "creator_pid", "sweeper_pid", "sweeper_alive",
    "sweeper_age_ms", "tier", "classes",
)
_MISSING = object()
_health_seq = _itertools.count()


class Cache(_tickcache.Cache):
    """Cache(name, create=False, max_entries=None, memory=None, max_readers=None,
    default_ttl=None, eviction="none", mode=None, checksum=False)

    One attached tickcache segment (``/dev/shm/tickcache.<name>``).

    ``create=True`` creates the segment when it does not exist.  The geometry
    (``max_entries`` keys, ``memory`` bytes as an int or a string like
    ``"64M"``, ``max_readers`` threads using it at once) is the library's
    default when None; when given for an existing segment it must match it
    (``GeometryError``).  ``default_ttl`` (seconds; None = never expires),
    ``eviction`` (``"none"``: a full segment raises ``FullError``; ``"lru"``)
    and ``mode`` (permission bits, default 0o600) apply at creation.
    ``checksum=True`` creates the segment with value checksums (every read
    verifies its value; a damaged one raises ``CorruptError``); asked of a
    segment created without them it raises ``GeometryError``.

    Keys are ``str`` (UTF-8) or bytes-like; values are bytes-like in and
    ``bytes`` out.  TTLs are seconds (int or float): ``None`` means the
    segment's TTL policy or default, ``0`` never expires, negative is
    ``ValueError``.  A Cache may be shared by the threads of a process; a
    child of ``fork()`` attaches anew on its first call.  Use it as a context
    manager or call ``close()``.
    """

    __slots__ = ()

    def __repr__(self):
        state = "closed" if self.closed else "open"
        return f"<tickcache.Cache {self.name!r} {state}>"

    def set_json(self, key, obj, ttl=None):
        """Store ``obj`` as JSON (orjson when importable, else json) with type
        ``TYPE_JSON``; returns the new version as ``set`` does.  NaN and the
        infinities, which JSON cannot hold, are a ``ValueError``."""
        return self.set(key, _dumps(obj), ttl, TYPE_JSON)

    def get_json(self, key, default=None):
        """The JSON value at ``key`` decoded, or ``default`` on a miss.  A value
        that is not JSON raises ``ValueError``."""
        v = self.get(key, _MISSING)
        if v is _MISSING:
            return default
        return _loads(v)

    def scan(self, pattern="*"):
        """An iterator over the live keys matching the glob ``pattern``
        (str for UTF-8 keys, bytes for others).  The keys are collected by one
        pass over the index when iteration starts, with the guarantees of
        ``keys()``."""
        yield from self.keys(pattern)

    def stats(self):
        """Counters and gauges of the segment as a dict, with the names and
        meanings of ``shm-inspect --json stat`` (``readers_other``,
        ``readers_dead`` and ``attached_other`` exclude this process), plus
        ``run_generation``, ``dto_lists``, ``run_active`` and
        ``ttl_policies``.  ``tier`` is the Redis tier kept by shm-bridge:
        ``{"state": "up"|"down"|"none", "bridge_pid", "bridge_alive",
        "heartbeat_age_ms", "since_ms"}`` (see tickcache.tier)."""
        raw = self._raw_stats()
        info = self.info()
        me = _os.getpid()
        readers = [r for r in self.readers() if r["pid"] != me]
        attached = [a for a in self.attached() if a["pid"] != me and a["alive"]]
        merged = dict(info)
        merged.update(raw)
        merged["mode"] = "%04o" % info["mode"]
        merged["index_fill"] = raw["entries"] / raw["max_entries"] if raw["max_entries"] else 0.0
        merged["readers_other"] = len(readers)
        merged["readers_dead"] = sum(1 for r in readers if r["state"] == "dead")
        merged["attached_other"] = len(attached)
        merged["tier"] = {"state": info["tier"], "bridge_pid": info["tier_pid"],
                          "bridge_alive": info["tier_alive"],
                          "heartbeat_age_ms": info["tier_heartbeat_age_ms"],
                          "since_ms": info["tier_since_ms"]}
        out = {k: merged[k] for k in _STAT_ORDER}
        for k in ("run_generation", "dto_lists", "run_active", "ttl_policies"):
            out[k] = raw[k]
        return out

    def health(self, key="tickcache:health"):
        """A health check in the manner of the users' cache manager: a set, a
        get and a delete of a key of this call's own (``key``, ":", the pid
        and a count, so that checks run at once by other processes and
        threads do not disturb each other) must work.  Returns a dict with
        ``ok``, ``error`` (None or the message), the memory in use and the
        processes attached; never raises for a cache that fails."""
        out = {"ok": False, "error": None}
        try:
            token = b"%d:%d" % (_os.getpid(), next(_health_seq))
            probe = (key.encode() if isinstance(key, str) else bytes(key)) + b":" + token
            self.set(probe, token, ttl=10)
            ok = self.get(probe) == token
            self.delete(probe)
            st = self.stats()
            out.update(ok=ok, error=None if ok else "read back another value",
                       memory_used=st["memory_used"], memory_bytes=st["memory_bytes"],
                       entries=st["entries"], attached=st["attached"])
        except (Error, ValueError) as e:
            out["error"] = str(e)
        return out


def segments():
    """The names of the tickcache segments on this host, sorted."""
    try:
        names = _os.listdir(_SHM_DIR)
    except FileNotFoundError:
        return []
    return sorted(n[len(_SHM_PREFIX):] for n in names
                  if n.startswith(_SHM_PREFIX) and name_valid(n[len(_SHM_PREFIX):]))


from ._cached import cached  # noqa: E402,F401

__all__ = [
    "Cache", "Item", "ReadSection", "Error", "CorruptError", "GeometryError", "StaleError",
    "FullError", "BusyError", "CacheNotConfiguredError", "InvalidDTOTypeError", "unlink",
    "segments", "name_valid", "now", "strerror", "register_dto", "type_id_of", "cached",
    "TYPE_JSON", "TYPE_COUNTER", "KEY_MAX", "VALUE_MAX", "NAME_MAX", "POLICY_PREFIX_MAX",
    "TC_ECONFLICT", "TC_ETYPE", "TC_EGEOMETRY", "TC_EVERSION", "TC_ECORRUPT", "TC_ENORUN",
    "LIB_VERSION",
]
