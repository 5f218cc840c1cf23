# SPDX-License-Identifier: MIT
"""Persistent duplicate prevention on a tickcache segment (needs.md section 4).

Both classes mark with ``Cache.add`` - set-if-absent, atomic across
processes: of N processes racing to mark the same candle or signal exactly
one wins.  Marks expire by TTL (candles 1 h, signals 24 h) and are ordinary
keys, so ``cache.purge("candle:*")`` clears them and ``Cache.save`` /
``shm-sweeper --snapshot-dir`` keep them across a host restart.  Use a
segment created with ``eviction="none"``: a full segment then raises
``FullError`` instead of silently dropping a mark.

Times are datetimes (naive meaning UTC) or epoch seconds; they are keyed to
the millisecond (truncated; a float as the ``datetime.fromtimestamp`` of it,
so that both forms of an instant make the same mark).
"""
import datetime as _dt

__all__ = ["CandleCache", "SignalPublishCache"]

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def _epoch_ms(t):
    if isinstance(t, float):
        # The datetime.fromtimestamp of it, so that a float and the datetime
        # of the same instant are the same mark.
        try:
            t = _dt.datetime.fromtimestamp(t, _dt.timezone.utc)
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"time {t!r} is out of range") from None
    if isinstance(t, _dt.datetime):
        if t.tzinfo is None:
            t = t.replace(tzinfo=_dt.timezone.utc)
        return (t - _EPOCH) // _dt.timedelta(milliseconds=1)
    if isinstance(t, bool) or not isinstance(t, int):
        raise TypeError(f"time must be a datetime or epoch seconds, not {type(t).__name__}")
    return int(t) * 1000


def _part(name, v):
    if not isinstance(v, str):
        raise TypeError(f"{name} must be str, not {type(v).__name__}")
    if not v:
        raise ValueError(f"{name} is empty")
    return v


class CandleCache:
    """A candle of an instrument is processed once, across processes."""

    def __init__(self, cache, ttl=3600, prefix="candle:"):
        """Marks in ``cache`` under ``prefix``, living ``ttl`` seconds (1 h)."""
        self.cache = cache
        self.ttl = ttl
        self.prefix = prefix

    def key(self, instrument, timeframe, ts):
        """The mark's key: ``<prefix><instrument>:<timeframe>:<epoch ms>``."""
        return (f"{self.prefix}{_part('instrument', instrument)}:"
                f"{_part('timeframe', timeframe)}:{_epoch_ms(ts)}")

    def should_process(self, instrument, timeframe, ts):
        """True exactly once per (instrument, timeframe, candle time) while the
        mark lives; False for every later call, from any process."""
        return self.cache.add(self.key(instrument, timeframe, ts), b"1", ttl=self.ttl)


class SignalPublishCache:
    """A trading signal is published once per instrument and candle."""

    def __init__(self, cache, prefix="signal:"):
        """Marks in ``cache`` under ``prefix``."""
        self.cache = cache
        self.prefix = prefix

    def key(self, instrument, candle_start):
        """The mark's key: ``<prefix><instrument>:<epoch ms>``."""
        return f"{self.prefix}{_part('instrument', instrument)}:{_epoch_ms(candle_start)}"

    def mark_published(self, instrument, candle_start, signal_id, ttl=86400):
        """Record ``signal_id`` as published for the candle: True when this call
        marked it, False when it was already marked (by any process)."""
        sid = _part("signal_id", signal_id).encode()
        return self.cache.add(self.key(instrument, candle_start), sid, ttl=ttl)

    def was_published(self, instrument, candle_start):
        """True when a signal of the candle is marked published."""
        return self.cache.exists(self.key(instrument, candle_start))

    def get_signal_id(self, instrument, candle_start):
        """The published signal's id, or None."""
        v = self.cache.get(self.key(instrument, candle_start))
        return None if v is None else v.decode()
