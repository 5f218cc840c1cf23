# SPDX-License-Identifier: MIT
"""DTO classes, their uint32 type ids, and their JSON form.

A DTO is a pydantic model (v1 or v2) or a dataclass.  It is stored as JSON -
pydantic's own JSON for a model, an object of its fields for a dataclass -
never pickled: a segment is shared memory, and unpickling runs code.

Every class has a type id: the one given to ``register_dto``, else a stable
default derived from its module and qualified name (the first four bytes of
their BLAKE2b digest), the same in every interpreter and process.
"""
import dataclasses
import datetime as _dt
import decimal
import enum
import hashlib
import types
import typing
import uuid

from ._json import dumps, loads, non_finite

try:  # optional, never required
    import pydantic as _pydantic
    _BaseModel = _pydantic.BaseModel
    _PYDANTIC2 = hasattr(_BaseModel, "model_validate_json")
except ImportError:  # pragma: no cover - depends on the machine
    _BaseModel = None
    _PYDANTIC2 = False

_RESERVED = {0, 0xC0117E40}  # untyped, TC_TYPE_COUNTER
_UnionType = getattr(types, "UnionType", None)  # X | None (3.10)

_id_of = {}   # class -> type id
_class_of = {}  # type id -> class


def is_dto_class(cls):
    """True for a pydantic model class or a dataclass."""
    if not isinstance(cls, type):
        return False
    if _BaseModel is not None and issubclass(cls, _BaseModel):
        return True
    return dataclasses.is_dataclass(cls)


def _name(cls):
    return f"{cls.__module__}.{cls.__qualname__}"


def default_type_id(cls):
    """The stable default type id of ``cls``: from ``module.qualname``."""
    name = _name(cls).encode()
    tid = int.from_bytes(hashlib.blake2b(name, digest_size=4).digest(), "little")
    while tid in _RESERVED:
        tid = (tid + 1) & 0xFFFFFFFF
    return tid


def register_dto(cls, type_id=None):
    """Map the DTO class ``cls`` to ``type_id`` (a uint32 other than 0 and
    ``TYPE_COUNTER``; default: ``default_type_id(cls)``) and return ``cls``, so
    that it also works as a class decorator.  Registering a class again with
    the same id does nothing; another id, or an id taken by another class,
    raises ``ValueError``, except that a class defined again (the same
    ``module.qualname``: a class statement run again, a module reloaded)
    takes over the id of the class it replaces; both keep it.  Unregistered
    classes are registered on first use with their default id."""
    if not is_dto_class(cls):
        raise TypeError(f"{cls!r} is not a pydantic model or a dataclass")
    if type_id is None:
        type_id = default_type_id(cls)
    if not isinstance(type_id, int) or isinstance(type_id, bool):
        raise TypeError(f"type_id must be int, not {type(type_id).__name__}")
    if not 0 <= type_id <= 0xFFFFFFFF or type_id in _RESERVED:
        raise ValueError(f"type_id {type_id:#x} is reserved or not a uint32")
    old = _id_of.get(cls)
    if old is not None and old != type_id:
        raise ValueError(f"{cls.__qualname__} is registered with type id {old:#x}")
    other = _class_of.get(type_id)
    if other is not None and other is not cls and _name(other) != _name(cls):
        raise ValueError(f"type id {type_id:#x} is registered to {other.__qualname__}")
    _id_of[cls] = type_id
    _class_of[type_id] = cls
    return cls


def type_id_of(cls):
    """The type id of the DTO class ``cls`` (registered on first use)."""
    tid = _id_of.get(cls)
    if tid is None:
        register_dto(cls)
        tid = _id_of[cls]
    return tid


def _subclasses(cls):
    out, todo = [cls], [cls]
    while todo:
        for sub in type.__subclasses__(todo.pop()):  # metaclasses too
            if sub not in out:
                out.append(sub)
                todo.append(sub)
    return out


def classes_by_id(want):
    """{type id: class} of ``want`` and its subclasses (those imported here);
    of classes defined again, the last defined."""
    return {type_id_of(cls): cls for cls in _subclasses(want) if is_dto_class(cls)}


def class_name(type_id):
    """The registered class name of ``type_id``, for messages."""
    cls = _class_of.get(type_id)
    return cls.__qualname__ if cls is not None else f"type id {type_id:#x}"


# --- JSON form -------------------------------------------------------------

def _jsonable(v):
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {f.name: _jsonable(getattr(v, f.name)) for f in dataclasses.fields(v)}
    if _BaseModel is not None and isinstance(v, _BaseModel):
        return loads(encode(v))
    if isinstance(v, (_dt.datetime, _dt.date, _dt.time)):
        return v.isoformat()
    if isinstance(v, _dt.timedelta):
        return v.total_seconds()
    if isinstance(v, enum.Enum):
        return _jsonable(v.value)
    if isinstance(v, (decimal.Decimal, uuid.UUID)):
        return str(v)
    if isinstance(v, dict):
        return {_json_key(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, set, frozenset)):
        return [_jsonable(x) for x in v]
    return v


def _convert(tp, v):
    """JSON value ``v`` to the annotated type ``tp`` (the types _jsonable
    writes), leaving anything else as it is."""
    if v is None:
        return None
    origin = typing.get_origin(tp)
    if origin is typing.Union or (origin is not None and origin is _UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _convert(args[0], v) if len(args) == 1 else v
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            args = (args[0],) * len(v)
        if len(args) != len(v):  # bare tuple, or not the annotated length
            args = (typing.Any,) * len(v)
        return tuple(_convert(a, x) for a, x in zip(args, v))
    if origin in (list, set, frozenset):
        args = typing.get_args(tp)
        inner = args[0] if args else typing.Any
        items = [_convert(inner, x) for x in v]
        return origin(items) if origin is not list else items
    if origin is dict:
        args = typing.get_args(tp)
        kt, inner = args if len(args) == 2 else (typing.Any, typing.Any)
        return {_from_json_key(kt, k): _convert(inner, x) for k, x in v.items()}
    if not isinstance(tp, type):
        return v
    if dataclasses.is_dataclass(tp):
        return _from_fields(tp, v)
    if _BaseModel is not None and issubclass(tp, _BaseModel):
        return decode(tp, dumps(v))
    if issubclass(tp, _dt.datetime):
        return _dt.datetime.fromisoformat(v)
    if issubclass(tp, _dt.date):
        return _dt.date.fromisoformat(v)
    if issubclass(tp, _dt.time):
        return _dt.time.fromisoformat(v)
    if issubclass(tp, _dt.timedelta):
        return _dt.timedelta(seconds=v)
    if issubclass(tp, (decimal.Decimal, uuid.UUID, enum.Enum)):
        return tp(v)
    if tp is float and isinstance(v, int):
        return float(v)
    return v


def _json_key(k):
    """A dict key as JSON can hold it: a string.  A key that is not one is
    written as its JSON text (1 -> "1", an enum member as its value's), so
    that _from_json_key can restore it from the annotation."""
    k = _jsonable(k)
    return k if isinstance(k, str) else dumps(k).decode()


def _from_json_key(tp, k):
    """The dict key ``k`` (a str) as the annotated key type ``tp``."""
    if typing.get_origin(tp) in (tuple, frozenset):  # written as its JSON text
        return _convert(tp, loads(k.encode()))
    if tp is typing.Any or tp is str or not isinstance(tp, type):
        return k
    if issubclass(tp, enum.Enum):
        try:
            return tp(k)
        except ValueError:
            return tp(loads(k.encode()))
    if issubclass(tp, (bool, int, float)):
        return tp(loads(k.encode()))
    return _convert(tp, k)


def _from_fields(cls, obj):
    """An instance of the dataclass ``cls`` from the object of its fields: the
    fields ``__init__`` takes are passed to it, the others (``init=False``)
    are set after it, to the values stored (frozen classes included)."""
    hints = typing.get_type_hints(cls)
    kw, later = {}, {}
    for f in dataclasses.fields(cls):
        if f.name in obj:
            v = _convert(hints.get(f.name, typing.Any), obj[f.name])
            (kw if f.init else later)[f.name] = v
    dto = cls(**kw)
    for name, v in later.items():
        object.__setattr__(dto, name, v)
    return dto


def encode(dto):
    """The JSON bytes of the DTO instance ``dto``; ``ValueError`` when a NaN
    or an infinity in it would not come back as itself."""
    if _BaseModel is not None and isinstance(dto, _BaseModel):
        if _PYDANTIC2:
            out = dto.model_dump_json().encode()
            # pydantic 2 writes NaN and infinities as null by default: read
            # back, they would be None, or fail validation.
            if b"null" in out and non_finite(dto):
                raise ValueError(f"{type(dto).__qualname__} holds a NaN or an infinity, "
                                 "which its JSON writes as null: give the model "
                                 "model_config ser_json_inf_nan='constants'")
            return out
        return dto.json().encode()
    if dataclasses.is_dataclass(dto) and not isinstance(dto, type):
        return dumps(_jsonable(dto))
    raise TypeError(f"a DTO is a pydantic model or a dataclass instance, not "
                    f"{type(dto).__name__}")


def decode(cls, data):
    """An instance of ``cls`` from its JSON bytes."""
    if _BaseModel is not None and issubclass(cls, _BaseModel):
        if _PYDANTIC2:
            return cls.model_validate_json(data)
        return cls.parse_raw(data)
    return _from_fields(cls, loads(data))
