"""Typed config schemas: the shared field types and the one way their errors read.

Every config plumecast reads (the scenario TOML, the training settings of ``--set`` and
``config.json``) is parsed against one pydantic schema. The types below give every
number a type and a range and refuse NaN and infinity; whole numbers are strict (``2.5``
and ``true`` are not a batch size). :func:`describe` turns a ``ValidationError`` into one
line that names each key at fault, with a "did you mean" suggestion for unknown keys.
"""

from __future__ import annotations

import difflib
import functools
import types
import typing
from typing import Annotated, Any

import annotated_types as at
from pydantic import AllowInfNan, Strict, ValidationError

__all__ = ["Number", "Positive", "NonNegative", "Whole", "PositiveWhole", "NonNegativeWhole", "describe",
           "suggest", "closest", "known_keys",
           "raising"]

# A finite real number (an integer is accepted, a bool or a string is not).
Number = Annotated[float, Strict(), AllowInfNan(False)]
Positive = Annotated[float, Strict(), AllowInfNan(False), at.Gt(0)]
NonNegative = Annotated[float, Strict(), AllowInfNan(False), at.Ge(0)]
# A whole number (a float, even 2.0, or a bool is not).
Whole = Annotated[int, Strict()]
PositiveWhole = Annotated[int, Strict(), at.Gt(0)]
NonNegativeWhole = Annotated[int, Strict(), at.Ge(0)]

_UNKNOWN = ("extra_forbidden", "unexpected_keyword_argument", "unexpected_positional_argument")
_MISSING = ("missing", "missing_argument", "missing_keyword_only_argument")
_WHOLE = ("int_type", "int_from_float", "int_parsing", "int_parsing_size")
_NUMBER = ("float_type", "float_parsing", "decimal_type")
_RANGE = ("greater_than", "greater_than_equal", "less_than", "less_than_equal", "finite_number")


def closest(word: str, known) -> str | None:
    """The known name closest to ``word`` (difflib), or None when none is close."""
    close = difflib.get_close_matches(str(word), [str(k) for k in known], n=1, cutoff=0.6)
    return close[0] if close else None


def suggest(word: str, known) -> str:
    """'; did you mean 'x'?' for the closest known name, or ''."""
    close = closest(word, known)
    return f"; did you mean {close!r}?" if close else ""


def _fields(cls) -> dict | None:
    fields = getattr(cls, "__pydantic_fields__", None)
    if fields is None:
        fields = getattr(cls, "model_fields", None)
    return fields


def _unwrap(tp) -> tuple[Any, list]:
    """(the type without Annotated/Optional, the constraint metadata collected)."""
    meta: list = []
    while True:
        origin = typing.get_origin(tp)
        if origin is Annotated:
            args = typing.get_args(tp)
            tp, meta = args[0], meta + list(args[1:])
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp, meta
            tp = args[0]
        else:
            return tp, meta


def _at(root, loc) -> tuple[Any, list]:
    """The type (and its constraints) found by following ``loc`` from the schema ``root``."""
    tp, meta = root, []
    for part in loc:
        tp, _ = _unwrap(tp)
        if isinstance(part, int):
            args = typing.get_args(tp)
            if typing.get_origin(tp) in (list, tuple) and args:
                tp = args[0] if (len(args) == 1 or args[-1] is Ellipsis) else args[min(part, len(args) - 1)]
                meta = []
            else:
                return None, []
        else:
            fields = _fields(tp)
            if not fields or part not in fields:
                return None, []
            tp, meta = fields[part].annotation, list(fields[part].metadata)
    inner, more = _unwrap(tp)
    return inner, meta + more


def known_keys(root, loc) -> list[str]:
    """The keys the schema allows in the table at ``loc``."""
    tp, _ = _at(root, loc)
    fields = _fields(tp) if tp is not None else None
    return list(fields) if fields else []


def _range_text(meta) -> str:
    parts = []
    for m in meta:
        for attr, sym in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
            v = getattr(m, attr, None)
            if v is not None:
                parts.append(f"{sym} {v:g}" if isinstance(v, (int, float)) else f"{sym} {v}")
    return " and ".join(parts)


def _walk_input(data, loc):
    """The input value at ``loc`` (None when it is not there)."""
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _path(data, loc) -> str:
    """``room.inlets[0] ('diffuser').rect_m``: keys, list indices, and the name of a named entry."""
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            item = _walk_input(data, loc[: i + 1])
            if i == len(loc) - 1 and not isinstance(item, (dict, list)):  # one number of a list
                return f"entry {part + 1} of {out}"
            out += f"[{part}]"
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                out += f" ({item['name']!r})"
        else:
            out += ("." if out else "") + str(part)
    return out


def _is_table(value) -> bool:
    return isinstance(value, dict) or (isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value))


def _one(err: dict, root, data, table_word: str) -> str:
    typ, loc, value = err["type"], tuple(err["loc"]), err.get("input")
    where = _path(data, loc)
    if typ in _UNKNOWN:
        parent, key = loc[:-1], loc[-1]
        known = known_keys(root, parent)
        hint = suggest(key, known)
        inside = f" in {_path(data, parent)}" if parent else ""
        if table_word == "table" and _is_table(value):
            b0, b1 = ("[[", "]]") if isinstance(value, list) else ("[", "]")
            prefix = "".join(f"{p}." for p in parent if isinstance(p, str))
            close = closest(key, known)
            tip = f"; did you mean {b0}{prefix}{close}{b1}?" if close else ""
            return f"unknown table {b0}{prefix}{key}{b1}{inside if any(isinstance(p, int) for p in parent) else ''}{tip}"
        shown = f" (known: {', '.join(known)})" if known and not hint else ""
        return f"unknown key {key!r}{inside}{hint}{shown}"
    if typ in _MISSING:
        if loc and isinstance(loc[-1], int):  # a fixed-length list given too short
            tp, _ = _at(root, loc[:-1])
            args = typing.get_args(tp) if typing.get_origin(tp) is tuple else ()
            given = _walk_input(data, loc[:-1])
            if args and Ellipsis not in args:
                return f"{_path(data, loc[:-1])} must have {len(args)} entries" + (
                    f", got {given!r}" if isinstance(given, list) else "")
        return f"missing key {where}"
    got = f", got {value!r}" if not isinstance(value, (dict, list)) or len(repr(value)) < 60 else ""
    if typ in _WHOLE:
        return f"{where} must be a whole number{got}"
    if typ in _NUMBER:
        return f"{where} must be a number{got}"
    if typ in _RANGE:
        _, meta = _at(root, loc)
        rng = _range_text(meta)
        if not rng:
            ctx = err.get("ctx") or {}
            rng = _range_text([at.Gt(ctx["gt"])] if "gt" in ctx else [at.Ge(ctx["ge"])] if "ge" in ctx else
                              [at.Lt(ctx["lt"])] if "lt" in ctx else [at.Le(ctx["le"])] if "le" in ctx else [])
        return f"{where} must be finite" + (f" and {rng}" if rng else "") + got
    if typ == "literal_error":
        tp, _ = _at(root, loc)
        if typing.get_origin(tp) is typing.Literal:
            return f"{where} must be one of {', '.join(map(str, typing.get_args(tp)))}{got}"
        return f"{where} must be one of {(err.get('ctx') or {}).get('expected', '?')}{got}"
    if typ in ("bool_type", "bool_parsing"):
        return f"{where} must be true or false{got}"
    if typ in ("string_type",):
        return f"{where} must be a string{got}"
    if typ in ("list_type", "tuple_type", "iterable_type"):
        return f"{where} must be a list{got}"
    if typ in ("dict_type", "model_type", "dataclass_type", "model_attributes_type", "dataclass_exact_type"):
        return f"{where} must be {'an' if table_word[0] in 'aeiou' else 'a'} {table_word}{got}"
    if typ in ("too_short", "too_long"):
        ctx = err.get("ctx") or {}
        n = ctx.get("min_length") if typ == "too_short" else ctx.get("max_length")
        return f"{where} must have {'at least' if typ == 'too_short' else 'at most'} {n} entries" + (
            f", got {ctx['actual_length']}" if "actual_length" in ctx else "")
    msg = str(err.get("msg", typ))
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    return f"{where}: {msg}" if where else msg


def describe(error: ValidationError, root, data=None, *, table_word: str = "table", limit: int = 4) -> str:
    """One line naming every problem of ``error`` (up to ``limit``), keys as paths from ``root``.

    ``root`` is the schema class validated; ``data`` the input (to name list entries by
    their ``name``); ``table_word`` what a nested mapping is called ("table" in TOML).
    """
    errors = sorted(error.errors(), key=lambda e: e["type"] not in _UNKNOWN)  # unknown keys explain missing ones
    problems = list(dict.fromkeys(_one(e, root, data, table_word) for e in errors))
    line = "; ".join(problems[:limit])
    if len(problems) > limit:
        line += f"; and {len(problems) - limit} more"
    return line


def raising(error_cls: type[Exception], *, table_word: str = "table"):
    """Class decorator for a pydantic dataclass: building it raises ``error_cls`` with :func:`describe`'s line.

    Validation while a larger schema is parsed does not go through ``__init__`` and keeps
    its ``ValidationError`` (the larger schema describes it); ``dataclasses.replace``
    does, so a replaced field is validated and reported the same way.
    """

    def decorate(cls):
        init = cls.__init__

        @functools.wraps(init)
        def __init__(self, *args, **kwargs):
            try:
                init(self, *args, **kwargs)
            except ValidationError as e:
                raise error_cls(describe(e, cls, kwargs, table_word=table_word)) from None

        cls.__init__ = __init__
        return cls

    return decorate


def load_toml_model(path, model, error: type[Exception], *, what: str = "file"):
    """``(model instance, raw TOML dict)`` of a TOML file validated against a pydantic ``model``.

    Every failure raises ``error`` with one line naming the file: missing (``no such
    {what}``), unreadable, malformed TOML, or the schema's complaint (:func:`describe`).
    """
    import tomllib
    from pathlib import Path

    p = Path(path)
    try:
        config = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{p}: no such {what}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise error(f"{p}: cannot be read ({e})") from None
    except tomllib.TOMLDecodeError as e:
        raise error(f"{p}: malformed TOML: {e}") from None
    try:
        return model.model_validate(config), config
    except ValidationError as e:
        raise error(f"{p}: {describe(e, model, config)}") from None
