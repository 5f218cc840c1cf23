# SPDX-License-Identifier: MIT
"""JSON encoding for tickcache: orjson when importable, else the standard
library.  Both write compact UTF-8 JSON and read each other's output with
the same values: NaN and the infinities, which JSON cannot hold (orjson
writes them as null, the standard library as a token orjson refuses), are a
ValueError for both; an int beyond 64 bits, which orjson cannot write and
reads as a float, is written and read by the standard library."""
import dataclasses
import json as _json
import math
import re

try:  # optional, never required
    import orjson as _orjson
except ImportError:  # pragma: no cover - depends on the machine
    _orjson = None

# 20 digits in a row: maybe an int orjson would read as a float (u64 has 20).
_LONG_DIGITS = re.compile(rb"[0-9]{20}")


def _std_dumps(obj):
    try:
        return _json.dumps(obj, separators=(",", ":"), ensure_ascii=False,
                           allow_nan=False).encode()
    except ValueError as e:
        if "Out of range float" not in str(e):  # a circular reference, ...
            raise
        raise ValueError(f"{e}: NaN and infinities have no JSON form") from None


def non_finite(obj):
    """True when a float in ``obj`` (lists, dicts, dataclasses, pydantic
    models) is NaN or infinite."""
    todo = [obj]
    while todo:
        v = todo.pop()
        if isinstance(v, float):
            if not math.isfinite(v):
                return True
        elif isinstance(v, dict):
            todo.extend(v.values())
        elif isinstance(v, (list, tuple)):
            todo.extend(v)
        elif dataclasses.is_dataclass(v) and not isinstance(v, type):
            todo.extend(getattr(v, f.name) for f in dataclasses.fields(v))
        elif hasattr(type(v), "model_fields"):  # a pydantic model
            todo.extend(vars(v).values())
    return False


def dumps(obj):
    """``obj`` as compact JSON bytes; ``ValueError`` for NaN or an infinity."""
    if _orjson is None:
        return _std_dumps(obj)
    try:
        out = _orjson.dumps(obj)
    except _orjson.JSONEncodeError:
        # An int beyond 64 bits, a dict key that is not a str, ...: what the
        # standard library writes, as an interpreter without orjson would.
        return _std_dumps(obj)
    if b"null" in out and non_finite(obj):
        raise ValueError("Out of range float values are not JSON compliant: NaN and "
                         "infinities have no JSON form")
    return out


def loads(data):
    """The object of the JSON ``data`` (bytes); ``ValueError`` when it is not
    JSON."""
    if _orjson is not None and not _LONG_DIGITS.search(data):
        try:
            return _orjson.loads(data)
        except _orjson.JSONDecodeError as e:
            raise ValueError(f"value is not JSON: {e}") from None
    try:
        return _json.loads(data)
    except (UnicodeDecodeError, _json.JSONDecodeError) as e:
        raise ValueError(f"value is not JSON: {e}") from None
