# SPDX-License-Identifier: MIT
"""The users' protocols on tickcache: StrategyCache, the dedupe caches, the
cached decorator and the asyncio facade - their exact behaviour."""
import asyncio
import dataclasses
import datetime as dt
import enum
import math
import subprocess
import sys
import textwrap
import threading
import typing
import unittest
from decimal import Decimal

import tickcache
from tickcache import aio, dedupe, strategy
from tickcache._dto import default_type_id
from support import SegmentCase, python_env, run_python

try:
    import pydantic
except ImportError:  # pragma: no cover
    pydantic = None

UTC = dt.timezone.utc


class Side(enum.Enum):
    BUY = "buy"
    SELL = "sell"


@dataclasses.dataclass(frozen=True)
class Signal:
    symbol: str
    strength: float
    side: Side = Side.BUY
    at: typing.Optional[dt.datetime] = None
    price: Decimal = Decimal("0")
    tags: typing.List[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class ThreatSignal(Signal):
    level: int = 0


@dataclasses.dataclass
class Regime:
    name: str


class TestStrategyCache(SegmentCase):
    def setUp(self):
        super().setUp()
        self.sc = strategy.StrategyCache(self.cache)

    def test_errors_are_the_packages(self):
        self.assertIs(strategy.CacheNotConfiguredError, tickcache.CacheNotConfiguredError)
        self.assertIs(strategy.InvalidDTOTypeError, tickcache.InvalidDTOTypeError)
        self.assertTrue(issubclass(tickcache.CacheNotConfiguredError, tickcache.Error))
        self.assertFalse(issubclass(tickcache.CacheNotConfiguredError, TypeError))
        self.assertTrue(issubclass(tickcache.InvalidDTOTypeError, tickcache.Error))
        self.assertTrue(issubclass(tickcache.InvalidDTOTypeError, TypeError))
        self.assertTrue(issubclass(tickcache.Error, OSError))

    def test_outside_a_run_every_call_but_start_and_clear_raises(self):
        sc = self.sc
        sc.clear()  # no error without a run
        for call in (sc.get_run_anchor, lambda: sc.set_dto("k", Regime("x")),
                     lambda: sc.get_dtos("k", Regime), lambda: sc.has_dto("k")):
            with self.assertRaises(tickcache.CacheNotConfiguredError) as cm:
                call()
            self.assertEqual(cm.exception.code, tickcache.TC_ENORUN)
            self.assertIn("no run is active", str(cm.exception))

    def test_run_anchor(self):
        sc = self.sc
        sc.start_run(dt.datetime(2024, 3, 1, 14, 30, 0, 123456), run_id=7)  # naive = UTC
        a = sc.get_run_anchor()
        self.assertEqual(a.timestamp, dt.datetime(2024, 3, 1, 14, 30, 0, 123456, tzinfo=UTC))
        self.assertEqual(a.timestamp.tzinfo, UTC)
        self.assertEqual(a.run_id, 7)
        self.assertEqual(a.generation % 2, 1)
        with self.assertRaises(dataclasses.FrozenInstanceError):
            a.run_id = 8
        sc.clear()
        other = dt.timezone(dt.timedelta(hours=2))
        sc.start_run(dt.datetime(2024, 3, 1, 16, 30, tzinfo=other))
        b = sc.get_run_anchor()
        self.assertEqual(b.timestamp, dt.datetime(2024, 3, 1, 14, 30, tzinfo=UTC))
        self.assertEqual(b.run_id, 0)
        self.assertGreater(b.generation, a.generation)
        sc.clear()
        sc.start_run(1_700_000_000)
        self.assertEqual(sc.get_run_anchor().timestamp,
                         dt.datetime.fromtimestamp(1_700_000_000, UTC))
        sc.clear()
        with self.assertRaisesRegex(TypeError, "timestamp must be a datetime or epoch seconds"):
            sc.start_run("2024-01-01")

    def test_a_float_timestamp_is_anchored_as_datetime_fromtimestamp(self):
        sc = self.sc
        for t in (1626872848.82248, 1752754923.795323, 1651013805.147884, 1_700_000_000.5,
                  -1.25):
            sc.start_run(t)
            self.assertEqual(sc.get_run_anchor().timestamp, dt.datetime.fromtimestamp(t, UTC))
            sc.clear()
        with self.assertRaisesRegex(ValueError, "timestamp nan is out of range"):
            sc.start_run(float("nan"))
        # Beyond the library's int64 nanoseconds (years 1677..2262): ValueError.
        for bad in (10 ** 20, -10 ** 12, dt.datetime(3000, 1, 1), dt.datetime(1600, 1, 1)):
            with self.assertRaisesRegex(ValueError, "out of range"):
                sc.start_run(bad)
        sc.start_run(dt.datetime(2262, 4, 11))
        self.assertEqual(sc.get_run_anchor().timestamp, dt.datetime(2262, 4, 11, tzinfo=UTC))
        sc.clear()

    def test_second_start_raises_value_error(self):
        self.sc.start_run(dt.datetime(2024, 1, 1))
        with self.assertRaises(ValueError) as cm:
            self.sc.start_run(dt.datetime(2024, 1, 2))
        self.assertEqual(str(cm.exception), f"a run is already active on segment "
                         f"'{self.name}': call clear() first")
        self.assertEqual(self.sc.get_run_anchor().timestamp, dt.datetime(2024, 1, 1, tzinfo=UTC))

    def test_set_get_has_in_insertion_order(self):
        sc = self.sc
        sc.start_run(dt.datetime(2024, 1, 1))
        sigs = [Signal("AAPL", 0.1 * i, Side.SELL if i % 2 else Side.BUY,
                       dt.datetime(2024, 1, 1, 0, i, tzinfo=UTC), Decimal("1.25"), ["a", str(i)])
                for i in range(10)]
        self.assertFalse(sc.has_dto("signals"))
        self.assertEqual(sc.get_dtos("signals", Signal), [])
        for s in sigs:
            sc.set_dto("signals", s)
        self.assertTrue(sc.has_dto("signals"))
        got = sc.get_dtos("signals", Signal)
        self.assertEqual(got, sigs)
        self.assertIsInstance(got[3].side, Side)
        self.assertIsInstance(got[3].price, Decimal)
        self.assertEqual(got[3].at.tzinfo, UTC)
        # A key of DTOs is not an ordinary key, and the other way round.
        self.assertIsNone(self.cache.get("signals"))

    def test_subclasses_count_as_instances(self):
        sc = self.sc
        sc.start_run(0)
        sc.set_dto("mixed", Signal("A", 1.0))
        sc.set_dto("mixed", ThreatSignal("B", 2.0, level=3))
        got = sc.get_dtos("mixed", Signal)
        self.assertEqual([type(x) for x in got], [Signal, ThreatSignal])
        self.assertEqual(got[1].level, 3)
        with self.assertRaises(tickcache.InvalidDTOTypeError) as cm:
            sc.get_dtos("mixed", ThreatSignal)
        self.assertIsInstance(cm.exception, TypeError)
        self.assertEqual(str(cm.exception), "element 0 at key 'mixed' is a Signal, not a "
                         "ThreatSignal")
        sc.set_dto("mixed", Regime("trend"))
        with self.assertRaisesRegex(tickcache.InvalidDTOTypeError,
                                    "element 2 at key 'mixed' is a Regime, not a Signal"):
            sc.get_dtos("mixed", Signal)

    def test_clear_ends_everything_at_once(self):
        sc = self.sc
        sc.start_run(0)
        sc.set_dto("a", Regime("x"))
        sc.clear()
        sc.start_run(1)
        self.assertFalse(sc.has_dto("a"))
        self.assertEqual(sc.get_dtos("a", Regime), [])
        sc.clear()

    def test_a_plain_base_class_counts_its_dto_subclasses(self):
        # get_dtos(key, Base) is isinstance(dto, Base) for every DTO, whatever
        # Base is: an abstract class above the users' dataclasses and models.
        import abc

        class Order(abc.ABC):
            @abc.abstractmethod
            def side(self):
                ...

        @dataclasses.dataclass
        class Buy(Order):
            qty: int

            def side(self):
                return "buy"

        @dataclasses.dataclass
        class Sell(Order):
            qty: int

            def side(self):
                return "sell"
        sc = self.sc
        sc.start_run(0)
        self.assertEqual(sc.get_dtos("orders", Order), [])
        sc.set_dto("orders", Buy(1))
        sc.set_dto("orders", Sell(2))
        self.assertEqual(sc.get_dtos("orders", Order), [Buy(1), Sell(2)])
        sc.set_dto("orders", Regime("x"))
        with self.assertRaisesRegex(tickcache.InvalidDTOTypeError,
                                    "element 2 at key 'orders' is a Regime, not a .*Order"):
            sc.get_dtos("orders", Order)

    def test_non_dtos_are_refused(self):
        self.sc.start_run(0)
        with self.assertRaisesRegex(TypeError, "a DTO is a pydantic model or a dataclass "
                                    "instance, not dict"):
            self.sc.set_dto("k", {"a": 1})
        with self.assertRaisesRegex(TypeError, "dto_type must be a class, not"):
            self.sc.get_dtos("k", Regime("x"))

    def test_dtos_written_by_c_with_another_type_are_invalid(self):
        self.sc.start_run(0)
        self.cache._dto_append("raw", 5, b"\x00\x01")
        with self.assertRaises(tickcache.InvalidDTOTypeError) as cm:
            self.sc.get_dtos("raw", Regime)
        self.assertEqual(cm.exception.code, tickcache.TC_ETYPE)

    def test_foreign_payloads_are_invalid(self):
        self.sc.start_run(0)
        self.cache._dto_append("short", strategy.DTO_TYPE, b"\x01")
        with self.assertRaises(tickcache.InvalidDTOTypeError) as cm:
            self.sc.get_dtos("short", Regime)
        self.assertEqual(str(cm.exception), "element 0 at key 'short' is not a DTO of "
                         "tickcache.strategy")
        # A class id nobody registered here (a class not imported here).
        self.cache._dto_append("unknown", strategy.DTO_TYPE, b"\x78\x56\x34\x12{}")
        with self.assertRaises(tickcache.InvalidDTOTypeError) as cm:
            self.sc.get_dtos("unknown", Regime)
        self.assertEqual(str(cm.exception), "element 0 at key 'unknown' is a type id "
                         "0x12345678, not a Regime")

    @unittest.skipIf(pydantic is None, "pydantic not installed")
    def test_pydantic_models(self):
        class Bar(pydantic.BaseModel):
            symbol: str
            close: float
            ts: dt.datetime

        class FrozenAnchorish(pydantic.BaseModel):
            model_config = {"frozen": True}
            v: int
        sc = self.sc
        sc.start_run(0)
        bars = [Bar(symbol="MSFT", close=400.0 + i, ts=dt.datetime(2024, 1, 1, i, tzinfo=UTC))
                for i in range(3)]
        for b in bars:
            sc.set_dto("bars", b)
        sc.set_dto("f", FrozenAnchorish(v=1))
        self.assertEqual(sc.get_dtos("bars", Bar), bars)
        self.assertEqual(sc.get_dtos("f", FrozenAnchorish), [FrozenAnchorish(v=1)])
        with self.assertRaises(tickcache.InvalidDTOTypeError):
            sc.get_dtos("bars", FrozenAnchorish)


@dataclasses.dataclass(frozen=True)
class Book:
    levels: typing.Dict[int, float]
    last: typing.Tuple[int, dt.datetime, Decimal]
    by_side: typing.Dict[Side, typing.List[Decimal]] = dataclasses.field(default_factory=dict)
    spread: typing.Tuple[float, ...] = ()


@dataclasses.dataclass
class Derived:
    a: int
    b: int = dataclasses.field(init=False)
    note: str = dataclasses.field(init=False, default="")

    def __post_init__(self):
        self.b = self.a * 2


class TestDTOFields(SegmentCase):
    """A dataclass DTO read back equals the one stored, field for field."""

    def setUp(self):
        super().setUp()
        self.sc = strategy.StrategyCache(self.cache)
        self.sc.start_run(0)

    def roundtrip(self, dto):
        self.sc.set_dto("k", dto)
        (got,) = self.sc.get_dtos("k", type(dto))
        self.cache.purge("*")
        self.sc.clear()
        self.sc.start_run(0)
        return got

    def test_dict_keys_and_tuple_items_are_restored_from_the_annotations(self):
        b = Book({1: 101.5, 2: 101.25},
                 (7, dt.datetime(2024, 1, 1, 9, 30, tzinfo=UTC), Decimal("101.50")),
                 {Side.BUY: [Decimal("1.5")]}, (0.25, 1))
        got = self.roundtrip(b)
        self.assertEqual(got, b)
        self.assertEqual(list(got.levels), [1, 2])
        self.assertIsInstance(got.last[1], dt.datetime)
        self.assertIsInstance(got.last[2], Decimal)
        self.assertIs(list(got.by_side)[0], Side.BUY)
        self.assertEqual([type(x) for x in got.spread], [float, float])

    def test_a_class_defined_again_takes_over_its_name(self):
        # A class statement run again (a factory, importlib.reload, a test run
        # twice) makes a new class of the same module.qualname, with the same
        # default id: using it must not raise, nor reading by its base.
        def define():
            @dataclasses.dataclass
            class Tick(Regime):
                px: float = 0.0
            return Tick
        one, two = define(), define()
        self.sc.set_dto("k", one("a", 1.0))
        self.sc.set_dto("k", two("b", 2.0))
        self.assertEqual(tickcache.type_id_of(one), tickcache.type_id_of(two))
        self.assertEqual(self.sc.get_dtos("k", two), [two("a", 1.0), two("b", 2.0)])
        self.assertEqual(self.sc.get_dtos("k", Regime), [two("a", 1.0), two("b", 2.0)])
        self.assertIs(tickcache.register_dto(two, tickcache.type_id_of(one)), two)
        # A class of another name still cannot take the id.
        @dataclasses.dataclass
        class Other:
            px: float
        with self.assertRaisesRegex(ValueError, "is registered to .*define.<locals>.Tick"):
            tickcache.register_dto(Other, tickcache.type_id_of(one))

    @unittest.skipIf(sys.version_info < (3, 10), "X | None needs Python 3.10")
    def test_pep604_optional_fields_are_restored(self):
        @dataclasses.dataclass
        class Fill:
            at: dt.datetime | None = None
            px: Decimal | None = None
            book: dict[int, float] | None = None
            side: Side | None = None
        f = Fill(dt.datetime(2024, 1, 1, tzinfo=UTC), Decimal("1.5"), {1: 2.0}, Side.SELL)
        self.assertEqual(self.roundtrip(f), f)
        self.assertEqual(self.roundtrip(Fill()), Fill())

    def test_dict_keys_of_tuples_dates_and_decimals_are_restored(self):
        @dataclasses.dataclass
        class Grid:
            cells: typing.Dict[typing.Tuple[int, str], float]
            days: typing.Dict[dt.date, typing.FrozenSet[int]]
            px: typing.Dict[Decimal, bool]
        g = Grid({(1, "a"): 0.5, (2, "b"): 1.0}, {dt.date(2024, 1, 2): frozenset({1, 2})},
                 {Decimal("1.25"): True})
        self.assertEqual(self.roundtrip(g), g)

    def test_fields_without_init_are_restored(self):
        d = Derived(3)
        d.note = "set after init"
        got = self.roundtrip(d)
        self.assertEqual((got.a, got.b, got.note), (3, 6, "set after init"))


_NO_ORJSON = "import sys\nsys.modules['orjson'] = None\n"  # a child without orjson


class TestJSON(SegmentCase):
    """set_json, get_json, cached results and dataclass DTOs read back what was
    written, whether the writer or the reader has orjson or not."""

    BIG = {"n": 2 ** 70, "m": -(2 ** 64) - 1, "f": 0.1, "ids": [12345678901234567890123]}

    def test_no_value_is_changed_on_the_way(self):
        c = self.cache
        for bad in (float("nan"), float("inf"), -float("inf")):
            with self.assertRaisesRegex(ValueError, "not JSON compliant"):
                c.set_json("x", {"close": [1.0, bad]})
        self.assertIsNone(c.get("x"))
        c.set_json("big", self.BIG)
        self.assertEqual(c.get_json("big"), self.BIG)
        self.assertIsInstance(c.get_json("big")["n"], int)

        @tickcache.cached(c)
        def indicator():
            return {"rsi": float("nan")}
        with self.assertRaisesRegex(ValueError, "not JSON compliant"):
            indicator()
        self.assertIsNone(c.get(indicator.cache_key()))

    def test_interpreters_with_and_without_orjson_read_each_other(self):
        code = _NO_ORJSON + textwrap.dedent("""
            import json, tickcache
            c = tickcache.Cache(sys.argv[1])
            if sys.argv[2] == "write":
                c.set_json("from-std", json.loads(sys.argv[3]))
            else:
                print(json.dumps(c.get_json("from-orjson-maybe")))
        """)
        import json
        rc, out, err = run_python(code, self.name, "write", json.dumps(self.BIG))
        self.assertEqual((rc, err), (0, ""))
        self.assertEqual(self.cache.get_json("from-std"), self.BIG)
        self.cache.set_json("from-orjson-maybe", self.BIG)
        rc, out, err = run_python(code, self.name, "read")
        self.assertEqual((rc, err), (0, ""))
        self.assertEqual(json.loads(out), self.BIG)


class TestDTONonFinite(SegmentCase):
    """NaN and the infinities, which JSON cannot hold, never come back as
    another value (pydantic writes them as null by default)."""

    def setUp(self):
        super().setUp()
        self.sc = strategy.StrategyCache(self.cache)
        self.sc.start_run(0)

    def test_a_dataclass_with_nan_is_refused(self):
        with self.assertRaisesRegex(ValueError, "not JSON compliant"):
            self.sc.set_dto("k", Signal("AAPL", float("nan")))
        self.assertFalse(self.sc.has_dto("k"))

    @unittest.skipIf(pydantic is None, "pydantic not installed")
    def test_a_model_written_with_null_for_nan_is_refused(self):
        class Ind(pydantic.BaseModel):
            rsi: typing.Optional[float] = None
            atr: float = 0.0
            nested: typing.List[typing.Dict[str, float]] = []

        class Kept(Ind):
            model_config = {"ser_json_inf_nan": "constants"}
        for bad in (Ind(rsi=float("nan")), Ind(atr=float("inf")),
                    Ind(nested=[{"a": -float("inf")}])):
            with self.assertRaisesRegex(ValueError, "ser_json_inf_nan"):
                self.sc.set_dto("k", bad)
        self.assertFalse(self.sc.has_dto("k"))
        self.sc.set_dto("k", Ind(rsi=None, atr=1.5))
        self.sc.set_dto("k", Kept(rsi=float("nan"), atr=float("inf")))
        a, b = self.sc.get_dtos("k", Ind)
        self.assertEqual(a, Ind(rsi=None, atr=1.5))
        self.assertTrue(math.isnan(b.rsi))
        self.assertEqual(b.atr, float("inf"))


class TestDTORegistry(unittest.TestCase):
    def test_default_ids_are_stable_across_interpreters(self):
        code = ("import dataclasses\nfrom tickcache import type_id_of\n"
                "@dataclasses.dataclass\nclass Regime:\n    name: str\n"
                "Regime.__module__ = 'test_protocols'\nprint(type_id_of(Regime))")
        rc, out, err = run_python(code)
        self.assertEqual((rc, err), (0, ""))
        self.assertEqual(int(out), tickcache.type_id_of(Regime))
        self.assertEqual(int(out), default_type_id(Regime))

    def test_register(self):
        @dataclasses.dataclass
        class A:
            x: int

        @dataclasses.dataclass
        class B:
            x: int
        self.assertIs(tickcache.register_dto(A, 0x1234), A)
        self.assertEqual(tickcache.type_id_of(A), 0x1234)
        tickcache.register_dto(A, 0x1234)  # again, same id: fine
        with self.assertRaisesRegex(ValueError, "A is registered with type id 0x1234"):
            tickcache.register_dto(A, 0x9999)
        with self.assertRaisesRegex(ValueError, "type id 0x1234 is registered to"):
            tickcache.register_dto(B, 0x1234)
        with self.assertRaisesRegex(ValueError, "reserved"):
            tickcache.register_dto(B, 0)
        with self.assertRaisesRegex(ValueError, "reserved"):
            tickcache.register_dto(B, tickcache.TYPE_COUNTER)
        with self.assertRaisesRegex(TypeError, "is not a pydantic model or a dataclass"):
            tickcache.register_dto(int)


class TestDedupe(SegmentCase):
    def test_candle_once(self):
        cc = dedupe.CandleCache(self.cache)
        t = dt.datetime(2024, 5, 1, 13, 0)
        self.assertIs(cc.should_process("EURUSD", "1h", t), True)
        self.assertIs(cc.should_process("EURUSD", "1h", t), False)
        # The same instant as epoch seconds or an aware datetime is the same candle.
        self.assertIs(cc.should_process("EURUSD", "1h", t.replace(tzinfo=UTC).timestamp()), False)
        self.assertIs(cc.should_process("EURUSD", "1h", int(t.replace(tzinfo=UTC).timestamp())),
                      False)
        self.assertIs(cc.should_process("EURUSD", "4h", t), True)
        self.assertIs(cc.should_process("GBPUSD", "1h", t), True)
        key = cc.key("EURUSD", "1h", t)
        self.assertEqual(key, "candle:EURUSD:1h:1714568400000")
        exp = self.cache.get_item(key).expires_at
        self.assertAlmostEqual(exp - tickcache.now(), 3600, delta=5)
        self.assertEqual(self.cache.purge("candle:*"), 3)
        self.assertIs(cc.should_process("EURUSD", "1h", t), True)
        with self.assertRaisesRegex(TypeError, "instrument must be str"):
            cc.should_process(5, "1h", t)
        with self.assertRaisesRegex(TypeError, "time must be a datetime or epoch seconds"):
            cc.should_process("X", "1h", "2024")

    def test_a_float_time_is_the_candle_of_its_datetime(self):
        cc = dedupe.CandleCache(self.cache)
        sp = dedupe.SignalPublishCache(self.cache)
        for t in (1677947146.1337, 1782529388.8879, 1719577213.0389, 1714568400.123):
            d = dt.datetime.fromtimestamp(t, UTC)
            self.assertEqual(cc.key("EURUSD", "1m", t), cc.key("EURUSD", "1m", d))
            self.assertEqual(sp.key("EURUSD", t), sp.key("EURUSD", d))
            self.assertIs(cc.should_process("EURUSD", "1m", t), True)
            self.assertIs(cc.should_process("EURUSD", "1m", d), False)
        self.assertEqual(cc.key("X", "1m", 1714568400.123), "candle:X:1m:1714568400123")

    def test_signal_publish(self):
        sp = dedupe.SignalPublishCache(self.cache)
        t = dt.datetime(2024, 5, 1, 13, tzinfo=UTC)
        self.assertIs(sp.was_published("AAPL", t), False)
        self.assertIsNone(sp.get_signal_id("AAPL", t))
        self.assertIs(sp.mark_published("AAPL", t, "sig-1"), True)
        self.assertIs(sp.mark_published("AAPL", t, "sig-2"), False)
        self.assertIs(sp.was_published("AAPL", t), True)
        self.assertEqual(sp.get_signal_id("AAPL", t), "sig-1")
        exp = self.cache.get_item(sp.key("AAPL", t)).expires_at
        self.assertAlmostEqual(exp - tickcache.now(), 86400, delta=5)
        self.assertIs(sp.mark_published("AAPL", t.timestamp() + 60, "sig-3", ttl=10), True)
        with self.assertRaisesRegex(TypeError, "signal_id must be str"):
            sp.mark_published("AAPL", t, 17)

    def test_full_segment_raises_instead_of_dropping_marks(self):
        c = self.other(max_entries=64, memory="64K", max_readers=4)
        cc = dedupe.CandleCache(c)
        with self.assertRaises(tickcache.FullError):
            for i in range(100000):
                cc.should_process("X" * 200, "1m", i * 60)


class TestCached(SegmentCase):
    def test_read_through_json_and_bytes(self):
        calls = []

        @tickcache.cached(self.cache, ttl=30)
        def quote(symbol, venue="X"):
            calls.append(symbol)
            return {"symbol": symbol, "bid": 1.5, "venue": venue}

        @tickcache.cached(self.cache)
        def raw(n):
            calls.append(n)
            return b"\x00raw" * n
        self.assertEqual(quote("AAPL"), {"symbol": "AAPL", "bid": 1.5, "venue": "X"})
        self.assertEqual(quote("AAPL"), {"symbol": "AAPL", "bid": 1.5, "venue": "X"})
        self.assertEqual(quote("AAPL", venue="Y")["venue"], "Y")
        self.assertEqual(raw(2), b"\x00raw\x00raw")
        self.assertEqual(raw(2), b"\x00raw\x00raw")
        self.assertEqual(calls, ["AAPL", "AAPL", 2])
        self.assertEqual(quote.__name__, "quote")
        key = quote.cache_key("AAPL")
        self.assertEqual(key, f"cached:{__name__}.TestCached.test_read_through_json_and_bytes."
                              '<locals>.quote:[["AAPL"],{}]')
        self.assertGreater(self.cache.get_item(key).expires_at, tickcache.now() + 20)
        self.assertIs(quote.invalidate("AAPL"), True)
        quote("AAPL")
        self.assertEqual(calls, ["AAPL", "AAPL", 2, "AAPL"])

    def test_custom_key_long_key_and_errors(self):
        @tickcache.cached(self.cache, key=lambda sym: f"tradecore:market:quote:{sym}")
        def q(sym):
            return [sym]
        self.assertEqual(q("MSFT"), ["MSFT"])
        self.assertEqual(self.cache.get_json("tradecore:market:quote:MSFT"), ["MSFT"])

        @tickcache.cached(self.cache)
        def long(s):
            return len(s)
        self.assertEqual(long("x" * 1000), 1000)
        self.assertRegex(long.cache_key("x" * 1000), r"^cached:.*long:#[0-9a-f]{32}$")

        class Down(Exception):
            pass

        @tickcache.cached(self.cache)
        def failing():
            raise Down("source down")
        with self.assertRaises(Down):
            failing()
        self.assertIsNone(self.cache.get(failing.cache_key()))

        @tickcache.cached(self.cache)
        def takes_object(o):
            return 1
        with self.assertRaisesRegex(TypeError, "cannot derive a cache key from an argument of "
                                    "type object; pass key="):
            takes_object(object())
        with self.assertRaisesRegex(TypeError, "use tickcache.aio.cached"):
            @tickcache.cached(self.cache)
            async def coro():
                return 1

    def test_arguments_of_other_types_never_share_a_value(self):
        class Level(enum.IntEnum):
            HIGH = 1

        class Venue(str, enum.Enum):
            XNAS = "XNAS"

        class Ticker(str):
            def __repr__(self):
                return f"Ticker({str(self)!r})"

        @dataclasses.dataclass
        class Req:
            sym: str
        other = dataclasses.make_dataclass("Req", [("sym", str)])
        other.__qualname__ = Req.__qualname__
        other.__module__ = "elsewhere"

        @tickcache.cached(self.cache)
        def show(x):
            return repr(x)
        pairs = [(1, Level.HIGH), ("XNAS", Venue.XNAS), ("AAPL", Ticker("AAPL")),
                 (Req("A"), other("A")), ({"XNAS": 1}, {Venue.XNAS: 1})]
        for a, b in pairs:
            self.assertEqual(show(a), repr(a))
            self.assertEqual(show(b), repr(b))
            self.assertNotEqual(show.cache_key(a), show.cache_key(b))

    def test_default_keys_are_the_same_in_every_interpreter(self):
        code = textwrap.dedent("""
            import datetime as dt, enum, sys
            sys.path.insert(0, sys.argv[1])
            import test_protocols as tp
            from tickcache._cached import default_key
            class Level(enum.IntEnum):
                HIGH = 1
            Level.__qualname__ = "Level"
            args = ({"b": 1, "a": [1, 2]}, {3: "x", "__y__": 2}, {"s", "t", "u", "v"},
                    frozenset({1.5, 2}), (1, None), b"\\x00\\xff", dt.date(2024, 1, 2),
                    dt.datetime(2024, 1, 2, 3, tzinfo=dt.timezone.utc), Level.HIGH,
                    tp.Regime("trend"), "\\u00e9" * 300)
            print(default_key("m.f", args, {"z": 1, "a": tp.Side.BUY}))
        """)
        import os
        here = os.path.dirname(os.path.abspath(__file__))
        outs = []
        for seed in ("1", "2"):
            env = dict(python_env(), PYTHONHASHSEED=seed)
            p = subprocess.run([sys.executable, "-c", code, here], capture_output=True,
                               text=True, env=env, timeout=60)
            self.assertEqual((p.returncode, p.stderr), (0, ""))
            outs.append(p.stdout)
        self.assertEqual(outs[0], outs[1])
        self.assertRegex(outs[0], r"^cached:m.f:#[0-9a-f]{32}\n$")

    def test_ttl_none_zero_and_negative(self):
        c = self.cache
        c.ttl_policy("cached:", 60)
        calls = []

        def make(ttl):
            @tickcache.cached(c, ttl=ttl, key=lambda: f"cached:ttl:{ttl}")
            def f():
                calls.append(ttl)
                return [ttl]
            return f
        self.assertEqual(make(None)(), [None])
        self.assertAlmostEqual(c.get_item("cached:ttl:None").expires_at - tickcache.now(), 60,
                               delta=5)
        self.assertEqual(make(0)(), [0])
        self.assertIsNone(c.get_item("cached:ttl:0").expires_at)
        self.assertEqual(make(0.25)(), [0.25])
        with self.assertRaisesRegex(ValueError, "ttl must not be negative"):
            make(-1)()
        self.assertEqual(calls, [None, 0, 0.25])  # not run for a bad ttl
        self.assertIsNone(c.get("cached:ttl:-1"))
        import time
        time.sleep(0.4)
        self.assertIsNone(c.get("cached:ttl:0.25"))
        self.assertEqual(make(0.25)(), [0.25])
        self.assertEqual(calls, [None, 0, 0.25, 0.25])

    def test_results_bytes_and_json(self):
        @tickcache.cached(self.cache)
        def r(kind):
            return {"bytes": b"\x00\x01", "bytearray": bytearray(b"ab"), "empty": b"",
                    "str": "\x00text", "none": None, "tuple": (1, 2),
                    "nested": {"a": [1.5]}}[kind]
        for kind, want in (("bytes", b"\x00\x01"), ("bytearray", b"ab"), ("empty", b""),
                           ("str", "\x00text"), ("none", None), ("tuple", [1, 2]),
                           ("nested", {"a": [1.5]})):
            self.assertEqual((r(kind), type(r(kind))), (want, type(want)), kind)

    def test_an_invalidation_during_a_load_is_not_lost(self):
        # The source changes and invalidate() runs while a load computes
        # from the old source: the old value is returned to that call but
        # not kept, so the next call computes the new one.
        src = {"v": 1}

        @tickcache.cached(self.cache)
        def f():
            v = src["v"]
            if v == 1:
                src["v"] = 2
                self.assertIs(f.invalidate(), False)  # nothing cached yet
            return v
        self.assertEqual(f(), 1)
        self.assertEqual(f(), 2)
        self.assertEqual(f(), 2)

    def test_an_invalidation_by_another_process_during_a_load_is_not_lost(self):
        code = textwrap.dedent("""
            import sys, tickcache
            def quote(sym):
                pass
            quote.__module__, quote.__qualname__ = sys.argv[2], "quote"
            quote = tickcache.cached(tickcache.Cache(sys.argv[1]))(quote)
            print(quote.invalidate("AAPL"))
        """)
        src = {"AAPL": 1}

        def quote(sym):
            v = src[sym]
            if v == 1:
                src[sym] = 2
                self.assertEqual(run_python(code, self.name, __name__), (0, "False\n", ""))
            return v
        quote.__qualname__ = "quote"
        quote = tickcache.cached(self.cache)(quote)
        self.assertEqual(quote("AAPL"), 1)
        self.assertEqual(quote("AAPL"), 2)

    def test_single_flight_between_threads(self):
        started, release = threading.Event(), threading.Event()
        calls = []

        @tickcache.cached(self.cache, wait=30)
        def slow():
            calls.append(1)
            started.set()
            release.wait(30)
            return {"v": 1}
        out = []
        ts = [threading.Thread(target=lambda: out.append(slow())) for _ in range(3)]
        ts[0].start()
        started.wait(30)
        for t in ts[1:]:
            t.start()
        release.set()
        for t in ts:
            t.join(60)
        self.assertEqual(out, [{"v": 1}] * 3)
        self.assertEqual(calls, [1])


class TestAsync(SegmentCase):
    def test_calls_are_coroutines(self):
        async def main():
            a = aio.AsyncCache(self.cache)
            self.assertEqual(await a.set("k", b"v", ttl=10), 1)
            self.assertEqual(await a.get("k"), b"v")
            self.assertEqual(await a.get("x", b"d"), b"d")
            self.assertIs(await a.add("k", b"w"), False)
            self.assertIs(await a.exists("k"), True)
            self.assertEqual((await a.get_item("k")).value, b"v")
            self.assertEqual(await a.get_many(["k", "x"]), [b"v", None])
            self.assertIs(await a.cas("k", b"w", 1), True)
            self.assertIs(await a.expire("k", 0), True)
            self.assertEqual(await a.incr("n", 5), 5)
            await a.set_json("j", {"a": 1})
            self.assertEqual(await a.get_json("j"), {"a": 1})
            self.assertEqual(sorted(await a.keys()), ["j", "k", "n"])
            self.assertEqual(await a.rate_limit("r", 1, 3600), (True, 1))
            await a.ttl_policy("p:", 5)
            self.assertEqual(await a.ttl_policies(), {"p:": 5.0})
            self.assertEqual((await a.stats())["name"], self.name)
            self.assertIs((await a.health())["ok"], True)
            self.assertIs(await a.delete("k"), True)
            self.assertEqual(await a.purge("*"), 2)
        asyncio.run(main())

    def test_get_or_load_with_coroutine_loader_never_blocks_the_loop(self):
        async def main():
            a = aio.AsyncCache(self.cache)
            ticks = []
            gate = asyncio.Event()

            async def ticker():
                while not gate.is_set():
                    ticks.append(1)
                    await asyncio.sleep(0.01)

            async def loader():
                # Runs on the loop while get_or_load waits in the executor:
                # the ticker must go on meanwhile (a blocked loop hangs here).
                seen = len(ticks)
                while len(ticks) < seen + 3:
                    await asyncio.sleep(0.01)
                return b"async-loaded"
            t = asyncio.create_task(ticker())
            v = await a.get_or_load("k", loader, ttl=10)
            gate.set()
            await t
            self.assertEqual(v, b"async-loaded")
            self.assertEqual(await a.get_or_load("k", loader), b"async-loaded")

            class Down(Exception):
                pass

            async def bad():
                raise Down()
            with self.assertRaises(Down):
                await a.get_or_load("bad", bad)
            self.assertEqual(await a.get_or_load("sync", lambda: b"s"), b"s")
        asyncio.run(main())

    def run_child(self, body):
        """Run the asyncio program BODY in a child interpreter on this segment
        (a hang there must not hang the suite); its stdout lines."""
        code = "import asyncio, sys, threading, time, tickcache\n" \
               "from concurrent.futures import ThreadPoolExecutor\n" \
               "from tickcache.aio import AsyncCache\n" \
               "c = tickcache.Cache(sys.argv[1])\n" + textwrap.dedent(body)
        try:
            rc, out, err = run_python(code, self.name, timeout=40)
        except subprocess.TimeoutExpired:
            self.fail("the child hung (killed after 40 s)")
        self.assertEqual((rc, err), (0, ""))
        return out.split()

    def test_a_cancelled_wait_leaves_no_thread_behind(self):
        out = self.run_child("""
            async def main():
                ac = AsyncCache(c)
                seq = c.wait_any()
                waits = [asyncio.ensure_future(ac.wait("never")),
                         asyncio.ensure_future(ac.wait("never", version=0, timeout=3600)),
                         asyncio.ensure_future(ac.wait_any(seq))]
                await asyncio.sleep(0.3)
                for w in waits:
                    w.cancel()
                await asyncio.gather(*waits, return_exceptions=True)
                print(all(w.cancelled() for w in waits))
            t0 = time.monotonic()
            asyncio.run(main())  # waits for the loop's executor threads
            print(time.monotonic() - t0 < 5, threading.active_count())
        """)
        self.assertEqual(out, ["True", "True", "1"])

    def test_coroutine_loaders_may_use_the_loops_executor(self):
        # asyncio.to_thread, getaddrinfo (aiohttp, open_connection) and nested
        # get_or_load calls need the loop's executor while get_or_load waits
        # for the loader: as many misses as it has workers must not hang.
        out = self.run_child("""
            async def main():
                loop = asyncio.get_running_loop()
                loop.set_default_executor(ThreadPoolExecutor(max_workers=2))
                ac = AsyncCache(c, max_loads=2)
                async def inner(i):
                    return await asyncio.to_thread(lambda: b"i%d" % i)
                async def outer(i):
                    v = await ac.get_or_load("inner%d" % i, lambda: inner(i), ttl=10)
                    return v + await asyncio.to_thread(lambda: b"+o")
                vals = await asyncio.wait_for(asyncio.gather(
                    *(ac.get_or_load("outer%d" % i, lambda i=i: outer(i), ttl=10)
                      for i in range(4))), 10)
                print(*(v.decode() for v in vals))
            asyncio.run(main())
        """)
        self.assertEqual(out, ["i0+o", "i1+o", "i2+o", "i3+o"])

    def test_a_burst_of_misses_takes_a_bounded_number_of_reader_slots(self):
        # 60 misses at once on a segment of 32 reader slots: every one loads
        # (max_loads threads at a time, not one thread, one slot, each).
        out = self.run_child("""
            async def main():
                ac = AsyncCache(c)
                async def loader(i):
                    await asyncio.sleep(0.05)
                    return b"v%d" % i
                res = await asyncio.gather(
                    *(ac.get_or_load("b%d" % i, lambda i=i: loader(i), ttl=10)
                      for i in range(60)), return_exceptions=True)
                print(sum(r == b"v%d" % i for i, r in enumerate(res)),
                      [r for r in res if not isinstance(r, bytes)][:1])
            asyncio.run(main())
        """)
        self.assertEqual(out, ["60", "[]"])

    def test_get_or_load_cancelled_or_waiting_for_another_loader(self):
        out = self.run_child("""
            async def main():
                ac = AsyncCache(c)
                ticks = []
                async def ticker():
                    while True:
                        ticks.append(1)
                        await asyncio.sleep(0.01)
                t = asyncio.ensure_future(ticker())
                # Another thread holds the lease: the loop keeps running while
                # this call waits for its value.
                started = threading.Event()
                def slow():
                    started.set()
                    time.sleep(0.5)
                    return b"from-thread"
                th = threading.Thread(target=lambda: c.get_or_load("k", slow, wait=10))
                th.start()
                started.wait(10)
                n = len(ticks)
                v = await ac.get_or_load("k", lambda: b"not-run", wait=10)
                print(v.decode(), len(ticks) - n >= 10)
                th.join()
                # A task cancelled while its coroutine loader runs: the load
                # still ends (nothing is left held) and its value is kept.
                gate = asyncio.Event()
                async def loader():
                    await gate.wait()
                    return b"loaded"
                w = asyncio.ensure_future(ac.get_or_load("c", loader, ttl=10))
                await asyncio.sleep(0.2)
                w.cancel()
                gate.set()
                await asyncio.gather(w, return_exceptions=True)
                print(w.cancelled(), (await ac.get_or_load("c", lambda: b"again")).decode())
                err = KeyError("the loader's own")
                async def bad():
                    raise err
                try:
                    await ac.get_or_load("bad", bad)
                except KeyError as e:
                    print(e is err, c.get("bad"))
                t.cancel()
            t0 = time.monotonic()
            asyncio.run(main())
            print(time.monotonic() - t0 < 10)
        """)
        self.assertEqual(out, ["from-thread", "True", "True", "loaded", "True", "None", "True"])

    def test_a_loader_raising_stop_iteration_does_not_hang_its_caller(self):
        # A Future refuses StopIteration (as a coroutine's is made a
        # RuntimeError): the caller gets a RuntimeError caused by it.
        out = self.run_child("""
            async def main():
                ac = AsyncCache(c)
                def sync():
                    raise StopIteration
                async def coro():
                    raise StopIteration
                for loader in (sync, coro):
                    try:
                        await asyncio.wait_for(ac.get_or_load("k", loader), 10)
                    except RuntimeError as e:
                        print(type(e.__cause__).__name__)
            asyncio.run(main())
        """)
        self.assertEqual(out, ["StopIteration", "StopIteration"])

    def test_async_cached_invalidation_during_a_load_is_not_lost(self):
        async def main():
            a = aio.AsyncCache(self.cache)
            src = {"v": 1}

            @aio.cached(a)
            async def f():
                v = src["v"]
                if v == 1:
                    src["v"] = 2
                    await f.invalidate()
                return v
            return [await f(), await f(), await f()]
        self.assertEqual(asyncio.run(main()), [1, 2, 2])

    def test_async_cached_and_file_calls(self):
        import os
        import tempfile

        async def main():
            a = aio.AsyncCache(self.cache)
            calls = []

            @aio.cached(a, ttl=30)
            async def fetch(sym):
                calls.append(sym)
                await asyncio.sleep(0)
                return {"sym": sym}
            self.assertEqual(await fetch("A"), {"sym": "A"})
            self.assertEqual(await fetch("A"), {"sym": "A"})
            self.assertEqual(calls, ["A"])
            self.assertIs(await fetch.invalidate("A"), True)
            with tempfile.TemporaryDirectory() as d:
                p = os.path.join(d, "s")
                n = await a.save(p)
                self.assertEqual(n, len(self.cache.keys()))
                self.assertEqual(await a.load(p), 0)
                conf = os.path.join(d, "ttl")
                with open(conf, "w") as f:
                    f.write("x: = 1000\n")
                await a.load_ttl_policies(conf)
                self.assertEqual(await a.ttl_policies(), {"x:": 1.0})
            with self.assertRaises(TypeError):
                aio.cached(a)(lambda: 1)
            for bad in (0, -1, 1.5, True):
                with self.assertRaisesRegex(ValueError, "max_loads must be an int >= 1"):
                    aio.AsyncCache(self.cache, max_loads=bad)
        asyncio.run(main())


if __name__ == "__main__":
    unittest.main()
