# SPDX-License-Identifier: MIT
"""The Redis tier on the caller's side (issue 13): a tickcache segment as the
host's near cache of values Redis holds for the fleet.

``shm-bridge`` (shm-bridge(8)) keeps the segment's copies of the tiered
prefixes coherent with Redis; ``RedisTier`` decides what a call does:

- ``get``: a local hit is returned at once; on a miss the value is read from
  Redis and cached with Redis's TTL.  The fill race (a write to Redis whose
  invalidation arrives while the value is being read) is closed like in
  ``tools/tier_redis.h``: a placeholder is added first and the value is
  installed by compare-and-set on the placeholder's version, so an
  invalidation that arrives meanwhile wins and nothing stale is cached.
  While the segment's tier is not ``"up"`` (no live bridge, or Redis lost),
  local copies are not trusted: the value comes from Redis, uncached (the
  state is read at most every ``state_ttl``, 50 ms).
- ``set``: write-through, Redis first, then the segment by compare-and-set
  on a placeholder put there first, so that another host's later write
  wins (nothing cached then).
- ``mark_once``: a dedupe mark across the fleet, ``Cache.add`` locally and
  ``SET NX PX`` in Redis; True only when both are won.  The local mark is a
  placeholder (a miss: readers ask Redis) until Redis has decided, so that
  a mark lost to another host never reads as this host's value.  When Redis
  fails the default is to refuse (False, counted in ``refused``);
  ``local_only=True`` lets the local mark decide (counted in
  ``local_only_marks``).
- ``rate_limit``: one Lua script per call (``INCR`` + ``PEXPIRE`` on the
  window's first hit), never separate calls.
- ``get_or_load`` and ``delete``: so that ``tickcache.cached(tier, ...)``
  works, with single flight across the fleet (a ``SET NX PX`` lock; losers
  wait for the value).  ``add``, ``exists`` and ``get`` let
  ``CandleCache(tier)`` and ``SignalPublishCache(tier)`` mark across the
  fleet.

Keys outside ``prefixes`` are plain local calls.  The Redis client is
redis-py (Debian's python3-redis); a ``redis.Redis`` built with
``decode_responses=False`` (the default).  Values are bytes; TTLs are seconds.
"""
import os
import struct
import time

__all__ = ["RedisTier", "PENDING_TYPE"]

#: The type of a read-through placeholder (the same as tools/tier_redis.h).
PENDING_TYPE = 0x7E1E4D00

_RATE_SCRIPT = ("local n = redis.call('INCR', KEYS[1]) "
                "if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end "
                "return n")
_LOCK_PREFIX = b"tc-lock:"


def _b(key):
    return key.encode() if isinstance(key, str) else bytes(key)


def _ms(ttl):
    if ttl is None:
        return 0
    if ttl < 0:
        raise ValueError("ttl must be >= 0")
    return int(-(-ttl * 1000 // 1))


class RedisTier:
    """``RedisTier(cache, redis_client, prefixes, max_ttl=None, local_only=False)``.

    ``cache`` is a ``tickcache.Cache`` that a ``shm-bridge`` serves for the
    ``prefixes`` (a list of str); ``max_ttl`` (seconds) caps the local TTL of
    values read through, and is the local TTL of keys without a Redis TTL."""

    #: seconds a tier state read from the segment is reused by get(): a
    #: bridge that dies is noticed within this much (the state check reads
    #: /proc, too slow for every get)
    state_ttl = 0.05

    def __init__(self, cache, redis_client, prefixes, max_ttl=None, local_only=False):
        """See the class."""
        if isinstance(prefixes, (str, bytes)):
            raise TypeError("prefixes is a list of strings")
        self.cache = cache
        self.redis = redis_client
        self.prefixes = [_b(p) for p in prefixes]
        if not all(self.prefixes):
            raise ValueError("a prefix is empty")
        self.max_ttl = max_ttl
        self.local_only = local_only
        #: marks refused because Redis failed (fail closed)
        self.refused = 0
        #: marks decided by the local mark alone because Redis failed
        self.local_only_marks = 0
        #: values read through but not cached (an invalidation or another fill came first)
        self.fills_lost = 0
        self._seq = 0
        self._state = None
        self._state_at = 0.0
        self._rate = redis_client.register_script(_RATE_SCRIPT)

    # -- helpers -----------------------------------------------------------
    def tiered(self, key):
        """True when KEY belongs to one of the tier's prefixes."""
        k = _b(key)
        return any(k.startswith(p) for p in self.prefixes)

    def tier_state(self):
        """The segment's tier state: "up", "down" or "none" (see Cache.info)."""
        return self.cache.info()["tier"]

    def _up(self):
        now = time.monotonic()
        if self._state is None or now - self._state_at >= self.state_ttl:
            self._state = self.tier_state()
            self._state_at = now
        return self._state == "up"

    def _local_ttl(self, pttl_ms, asked):
        """The local TTL (seconds, 0 = none) of a value whose Redis PTTL was
        PTTL_MS, counted from ASKED (time.time() before the read), less a
        millisecond, so that the local copy never outlives Redis's; None
        when nothing is left, or when the PTTL says the key is gone (-2) or
        is not a count: not cached."""
        if not isinstance(pttl_ms, int) or pttl_ms < -1:
            return None
        ttl = None
        if pttl_ms > 0:
            ttl = pttl_ms / 1000.0 - (time.time() - asked) - 0.001
            if ttl <= 0:
                return None
        if self.max_ttl is not None and (ttl is None or ttl > self.max_ttl):
            ttl = self.max_ttl
        return 0 if ttl is None else ttl

    def _placeholder(self, k, ttl):
        """Add a placeholder of this call's at K (a miss to every reader) for
        TTL seconds; its version, or None when K exists."""
        self._seq += 1
        nonce = struct.pack("<QQ", os.getpid(), self._seq)
        if not self.cache.add(k, nonce, ttl=ttl, type=PENDING_TYPE):
            return None
        it = self.cache.get_item(k)
        if it is not None and it.type == PENDING_TYPE and it.value == nonce:
            return it.version
        return None

    def _drop(self, k, ver):
        """Delete K if it is still the placeholder of version VER (given back:
        a retry can take it at once)."""
        it = self.cache.get_item(k)
        if it is not None and it.version == ver and it.type == PENDING_TYPE:
            self.cache.delete(k)

    def _redis_read(self, k):
        p = self.redis.pipeline(transaction=False)
        p.get(k)
        p.pttl(k)
        return p.execute()

    # -- reads -------------------------------------------------------------
    def get(self, key, default=None):
        """The value of KEY: local when cached, else read through from Redis
        (cached when no invalidation came meanwhile); ``default`` when Redis
        has no value either.  Redis errors (redis.exceptions.RedisError)
        reach the caller."""
        if not self.tiered(key):
            return self.cache.get(key, default)
        k = _b(key)
        up = self._up()
        if up:
            it = self.cache.get_item(k)
            if it is not None and it.type != PENDING_TYPE:
                return it.value
        ver = self._placeholder(k, 1) if up else None
        asked = time.time()
        try:
            value, pttl = self._redis_read(k)
        except Exception:
            if ver is not None:
                self.cache.cas(k, b"", ver, ttl=0.001, type=PENDING_TYPE)
            raise
        if value is None:
            if ver is not None:
                self.cache.cas(k, b"", ver, ttl=0.001, type=PENDING_TYPE)
            return default
        ttl = self._local_ttl(pttl, asked)
        if ver is not None and ttl is None:
            self.cache.cas(k, b"", ver, ttl=0.001, type=PENDING_TYPE)
            ver = None
        if ver is None or not self.cache.cas(k, value, ver, ttl=ttl):
            self.fills_lost += 1
        return value

    def exists(self, key):
        """True when KEY has a value locally or in Redis."""
        if not self.tiered(key):
            return self.cache.exists(key)
        it = self.cache.get_item(key) if self._up() else None
        if it is not None and it.type != PENDING_TYPE:
            return True
        return bool(self.redis.exists(_b(key)))

    # -- writes ------------------------------------------------------------
    def set(self, key, value, ttl=None):
        """Write-through: Redis (``SET``, ``PX`` when ``ttl``), then the
        segment, by compare-and-set on a placeholder put there before the
        ``SET`` (as in tools/tier_redis.h): another host's write that lands
        in Redis after ours has its invalidation delete the placeholder, so
        our value, which lost the race, is not cached (a plain set after the
        ``SET`` was: the invalidation could be applied first).  The local
        TTL counts from before the ``SET``.  While the tier is not ``"up"``
        nothing is cached and the local copy is deleted.  The bridge of this
        host then invalidates the local copy like any other (mirror mode
        rewrites it).  True when the value was cached locally; a Redis
        error reaches the caller, the local copy deleted."""
        if not self.tiered(key):
            return self.cache.set(key, value, ttl=ttl)
        k = _b(key)
        ms = _ms(ttl)
        ver = None
        if self._up():
            self._seq += 1
            nonce = struct.pack("<QQ", os.getpid(), self._seq)
            try:
                ver = self.cache.set(k, nonce, ttl=1, type=PENDING_TYPE)
            except Exception:
                ver = None  # full: nothing cached, the old copy deleted below
        asked = time.time()
        try:
            self.redis.set(k, bytes(value), px=ms or None)
        except Exception:
            self.cache.delete(k)
            raise
        left = ttl - (time.time() - asked) - 0.001 if ttl else 0
        if ver is None or (ttl and left <= 0):
            self.cache.delete(k)  # a delete never makes anything stale
            return False
        return self.cache.cas(k, value, ver, ttl=left)

    def delete(self, key):
        """Delete KEY in Redis and locally; True when either had it."""
        if not self.tiered(key):
            return self.cache.delete(key)
        k = _b(key)
        n = self.redis.delete(k)
        return bool(self.cache.delete(k)) or n > 0

    def mark_once(self, key, ttl, value=b"1"):
        """Take the dedupe mark KEY for ``ttl`` seconds across the fleet: True
        when this call won it (locally and in Redis) and must publish, False
        when anyone on any host holds it, or when Redis failed (refused, fail
        closed; with ``local_only`` the local mark decides)."""
        if not ttl or ttl <= 0:
            raise ValueError("ttl must be > 0 seconds")
        k = _b(key)
        # The local mark is a placeholder (a miss to readers, who then ask
        # Redis) until Redis has decided: VALUE is never read here before
        # it is the fleet's, not even after a crash at this point.
        ver = self._placeholder(k, min(ttl, 1))
        if ver is None:
            return False
        try:
            won = self.redis.set(k, bytes(value), nx=True, px=_ms(ttl))
        except Exception:
            if self.local_only:
                # The local mark decides: ours only while the placeholder is.
                if not self.cache.cas(k, value, ver, ttl=ttl):
                    return False
                self.local_only_marks += 1
                return True
            self._drop(k, ver)
            self.refused += 1
            return False
        if not won:
            # Another host holds it: reads go to Redis (read-through).
            self._drop(k, ver)
            return False
        self.cache.cas(k, value, ver, ttl=ttl)
        return True

    def add(self, key, value, ttl=None):
        """``mark_once`` with the Cache.add signature (CandleCache and
        SignalPublishCache take a tier); keys outside the prefixes are local."""
        if not self.tiered(key):
            return self.cache.add(key, value, ttl=ttl)
        return self.mark_once(key, ttl, value)

    def rate_limit(self, key, limit, window):
        """A fleet-wide fixed window of ``window`` seconds: ``(allowed, count)``."""
        n = int(self._rate(keys=[_b(key)], args=[_ms(window)]))
        return n <= limit, n

    # -- read-through with single flight across the fleet ------------------
    def get_or_load(self, key, loader, ttl=None, wait=5.0):
        """The value of KEY; when neither the segment nor Redis has it, one
        caller in the fleet runs ``loader()`` (a ``SET NX PX`` lock in Redis)
        and writes the result through; the others wait up to ``wait``
        seconds for it (then ``TimeoutError``).  The lock lasts ``wait``
        seconds (at least 1): a loader slower than that may run again in a
        caller that takes the expired lock.  A loader's exception reaches
        its caller and releases the lock.  A negative ``ttl`` is a
        ``ValueError`` before anything is loaded."""
        _ms(ttl)
        v = self.get(key)
        if v is not None:
            return v
        k = _b(key)
        lock = _LOCK_PREFIX + k
        token = struct.pack("<QQ", os.getpid(), time.monotonic_ns())
        deadline = time.monotonic() + wait
        delay = 0.001
        while True:
            if self.redis.set(lock, token, nx=True, px=max(1000, _ms(wait))):
                try:
                    v = self.get(key)  # loaded while we took the lock
                    if v is None:
                        v = bytes(loader())
                        self.set(key, v, ttl=ttl)
                    return v
                finally:
                    # Delete the lock only if it is still ours.
                    self.redis.eval("if redis.call('GET', KEYS[1]) == ARGV[1] then "
                                    "return redis.call('DEL', KEYS[1]) end return 0",
                                    1, lock, token)
            v = self.get(key)
            if v is not None:
                return v
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no value for {key!r} within {wait} s")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
