# SPDX-License-Identifier: MIT
"""Point-in-time strategy cache on a tickcache segment (needs.md section 1).

A run is the segment's: every process attached to it shares it.  During a
run, workers append immutable DTOs under keys ("signals",
"threat_signals", ...) and read them back in insertion order; ``clear()``
ends the run and everything of it vanishes at once, for every process.

Each DTO is stored as one element of the library's DTO list at its key with
the type id ``DTO_TYPE`` and a payload of its class's type id (uint32,
little-endian) followed by its JSON, so that ``get_dtos(key, Base)`` can
accept instances of subclasses of ``Base``, as ``isinstance`` does.
"""
import dataclasses
import datetime as _dt
import struct

from . import _dto
from ._tickcache import BusyError, CacheNotConfiguredError, InvalidDTOTypeError

__all__ = ["StrategyCache", "RunAnchor", "CacheNotConfiguredError", "InvalidDTOTypeError",
           "DTO_TYPE"]

#: The library type id of every DTO written by StrategyCache ("PyDT").
DTO_TYPE = 0x50794454

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_TID = struct.Struct("<I")


@dataclasses.dataclass(frozen=True)
class RunAnchor:
    """The frozen anchor of the active run: ``timestamp`` (an aware UTC
    datetime), the application's ``run_id`` and the library's
    ``generation`` (odd, different for every run of the segment)."""

    timestamp: _dt.datetime
    run_id: int
    generation: int


def _ts_ns(ts):
    if isinstance(ts, float):
        # As datetime.fromtimestamp rounds it (to the microsecond): a float has
        # no more digits at today's epoch, and the anchor is a datetime.
        try:
            ts = _dt.datetime.fromtimestamp(ts, _dt.timezone.utc)
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"timestamp {ts!r} is out of range") from None
    if isinstance(ts, _dt.datetime):
        if ts.tzinfo is None:
            ts = ts.replace(tzinfo=_dt.timezone.utc)
        ns = (ts - _EPOCH) // _dt.timedelta(microseconds=1) * 1000
    elif isinstance(ts, int) and not isinstance(ts, bool):
        ns = ts * 1_000_000_000
    else:
        raise TypeError(f"timestamp must be a datetime or epoch seconds, not "
                        f"{type(ts).__name__}")
    if not -2 ** 63 <= ns < 2 ** 63:  # the library's int64 nanoseconds
        raise ValueError(f"timestamp {ts!r} is out of range")
    return ns


class StrategyCache:
    """The users' StrategyCache protocol on a ``tickcache.Cache``.

    Outside a run every call but ``start_run`` and ``clear`` raises
    ``CacheNotConfiguredError``."""

    def __init__(self, cache):
        """Wrap ``cache`` (a ``tickcache.Cache``, typically one segment per
        strategy)."""
        self.cache = cache

    def start_run(self, timestamp, run_id=0):
        """Begin a run anchored at ``timestamp`` (a datetime, naive meaning UTC,
        or epoch seconds; a float is taken as ``datetime.fromtimestamp`` takes
        it, to the microsecond; int64 nanoseconds, years 1677 to 2262) with
        the application's ``run_id``.  A second start
        while a run is active raises ``ValueError``: call ``clear()`` first."""
        ts = _ts_ns(timestamp)
        try:
            self.cache._run_start(ts, run_id)
        except BusyError:
            raise ValueError("a run is already active on segment "
                             f"'{self.cache.name}': call clear() first") from None

    def get_run_anchor(self):
        """The ``RunAnchor`` of the active run."""
        ts_ns, run_id, gen, _started_ms, _pid = self.cache._run_anchor()
        ts = _EPOCH + _dt.timedelta(microseconds=ts_ns // 1000)
        return RunAnchor(timestamp=ts, run_id=run_id, generation=gen)

    def set_dto(self, key, dto):
        """Append the DTO ``dto`` (a pydantic model or a dataclass instance) to
        the list at ``key``."""
        body = _dto.encode(dto)
        self.cache._dto_append(key, DTO_TYPE, _TID.pack(_dto.type_id_of(type(dto))) + body)

    def get_dtos(self, key, dto_type):
        """The DTOs at ``key`` in insertion order, as instances of their classes.
        ``InvalidDTOTypeError`` (a ``TypeError``) when any of them is not an
        instance of ``dto_type``, any class (subclasses count as instances, so
        an abstract base above DTO classes takes them all; a class must be
        importable here to be recognised).  An empty list for an unknown key."""
        if not isinstance(dto_type, type):
            raise TypeError(f"dto_type must be a class, not {dto_type!r}")
        raw = self.cache._dto_list(key, DTO_TYPE)
        if not raw:
            return []
        by_id = _dto.classes_by_id(dto_type)
        classes = []
        for i, item in enumerate(raw):
            if len(item) < 4:
                raise InvalidDTOTypeError(f"element {i} at key {key!r} is not a DTO of "
                                          "tickcache.strategy")
            (tid,) = _TID.unpack_from(item)
            cls = by_id.get(tid)
            if cls is None:
                raise InvalidDTOTypeError(
                    f"element {i} at key {key!r} is a {_dto.class_name(tid)}, not a "
                    f"{dto_type.__qualname__}")
            classes.append(cls)
        return [_dto.decode(cls, item[4:]) for cls, item in zip(classes, raw)]

    def has_dto(self, key):
        """True when ``key`` holds a non-empty list."""
        return self.cache._dto_count(key) > 0

    def clear(self):
        """End the run: every DTO of it is gone at once, for every process.
        Nothing happens (and nothing is raised) without a run."""
        self.cache._run_end()
