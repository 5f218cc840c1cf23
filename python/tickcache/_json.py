# SPDX-License-Identifier: MIT
"""JSON encoding for tickcache: orjson when importable, else the standard
library.  Both write compact UTF-8 JSON and read each other's output."""
import json as _json

try:  # optional, never required
    import orjson as _orjson
except ImportError:  # pragma: no cover - depends on the machine
    _orjson = None


def dumps(obj):
    """``obj`` as compact JSON bytes."""
    if _orjson is not None:
        return _orjson.dumps(obj)
    return _json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def loads(data):
    """The object of the JSON ``data`` (bytes); ``ValueError`` when it is not
    JSON."""
    if _orjson is not None:
        try:
            return _orjson.loads(data)
        except _orjson.JSONDecodeError as e:
            raise ValueError(f"value is not JSON: {e}") from None
    try:
        return _json.loads(data)
    except (UnicodeDecodeError, _json.JSONDecodeError) as e:
        raise ValueError(f"value is not JSON: {e}") from None
