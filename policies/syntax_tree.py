"""pglast syntax trees that build themselves only as far as the rules read them.

``pglast.parse_sql`` turns every node of a statement into a validated Python object,
and on a real history that is most of a lint's time: the rules read a table's name
and a few columns, not the thousand nodes of a view's query. So a file is parsed once
by libpg_query into JSON (C code, fast), and each statement becomes an instance of a
subclass of pglast's own node class whose attributes are converted from the JSON on
first read and then kept. ``isinstance``, the enums, visitors and ``==`` behave as on
the trees ``pglast.parse_sql`` builds (``tests/policies/test_syntax_tree.py`` holds
them equal on the lint cases and a generated corpus), except that a pglast visitor's
``visit_<Type>`` methods are not dispatched (they look classes up exactly; override
``visit``), and node ``location`` attributes count bytes, not characters.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import Enum
from typing import Any

from pglast import ast, enums, parser

ParseError = parser.ParseError

_set = object.__setattr__
_GENERIC = frozenset({"Node*", "List*", "Expr*", "ValUnion"})
_INTEGERS = frozenset(
    {"AclMode", "AttrNumber", "Index", "RelFileNumber", "SubTransactionId", "bits32", "int", "int16", "int32"}
    | {"long", "uint32", "uint64"}
)
_A_CONST_VALUES = (("ival", ast.Integer), ("sval", ast.String), ("fval", ast.Float))
_A_CONST_VALUES += (("boolval", ast.Boolean), ("bsval", ast.BitString))
_LAZY_CLASSES: dict[type, type] = {}


def parse(sql: str) -> list[tuple[Any, int, int]]:
    """Each statement of ``sql`` as (node, start, end), offsets in characters of ``sql``.

    ``end`` is where the statement's text stops (before its ``;``); ``start`` is where
    libpg_query says it begins (after the previous ``;``: leading comments included).
    Raises ``ParseError`` as ``pglast.parse_sql`` does.
    """
    statements = json.loads(parser.parse_sql_json(sql)).get("stmts", [])
    to_chars = _char_offsets(sql)
    result = []
    for raw in statements:
        location = raw.get("stmt_location", 0)
        length = raw.get("stmt_len", 0)
        start = to_chars(location)
        end = to_chars(location + length) if length else len(sql)
        result.append((_node(raw["stmt"]), start, end))
    return result


def _char_offsets(sql: str) -> Any:
    """libpg_query counts bytes of UTF-8; Python strings count characters."""
    if sql.isascii():
        return lambda offset: offset
    encoded = sql.encode()
    return lambda offset: len(encoded[:offset].decode())


def _node(value: dict[str, Any]) -> Any:
    """A node written as ``{"Type": {fields}}`` (how JSON spells a generic ``Node*``)."""
    if not value:
        return None
    ((tag, body),) = value.items()
    if tag == "List":
        return _nodes(body.get("items", ()))
    return _lazy(getattr(ast, tag), body)


def _lazy(cls: type, body: dict[str, Any]) -> Any:
    lazy_class = _LAZY_CLASSES.get(cls) or _lazy_class(cls)
    node = lazy_class.__new__(lazy_class)
    _set(node, "_json", body)
    return node


def _lazy_class(cls: type) -> type:
    """A subclass of ``cls`` whose unset slots are read from the JSON on first access."""
    slots = cls.__slots__
    # name -> (JSON key, converter); pglast's def_ is JSON's def.
    fields = {name: (name.rstrip("_"), _converter(info.c_type)) for name, info in slots.items()}

    def __getattr__(self: Any, name: str) -> Any:  # noqa: N807 - only called for unset slots
        field = fields.get(name)
        if field is None:
            raise AttributeError(f"{cls.__name__!r} object has no attribute {name!r}")
        body = object.__getattribute__(self, "_json")
        value = _a_const(body, name) if cls is ast.A_Const else field[1](body.get(field[0]))
        _set(self, name, value)
        return value

    def __iter__(self: Any) -> Any:  # noqa: N807 - pglast iterates a node's attribute names
        return iter(slots)

    def __eq__(self: Any, other: object) -> bool:  # noqa: N807 - equal to pglast's own node, both ways
        ignored = cls._ATTRS_TO_IGNORE_IN_COMPARISON
        return isinstance(other, cls) and all(getattr(self, a) == getattr(other, a) for a in slots if a not in ignored)

    namespace = {"__slots__": ("_json",), "__getattr__": __getattr__, "__iter__": __iter__, "__eq__": __eq__}
    lazy_class = type(cls.__name__, (cls,), {**namespace, "__hash__": None})
    _LAZY_CLASSES[cls] = lazy_class
    return lazy_class


def _a_const(body: dict[str, Any], name: str) -> Any:
    """JSON spells a constant's value by its kind (``ival``, ``sval``...); pglast as ``val``."""
    if name == "isnull":
        return body.get("isnull", False)
    for key, value_class in _A_CONST_VALUES:
        if key in body:
            return _lazy(value_class, body[key])
    return None


def _converter(c_type: str) -> Callable[[Any], Any]:
    """How one attribute of this C type goes from JSON to what pglast holds.

    JSON leaves out false, zero and null; a generic ``Node*`` is written wrapped in its
    type's name, a pointer to a specific node type unwrapped.
    """
    enum = getattr(enums, c_type, None)
    if isinstance(enum, type) and issubclass(enum, Enum):
        absent = next((member for member in enum if member.value == 0), None)
        return lambda raw: absent if raw is None else enum[raw]
    if c_type == "ParseLoc":
        return lambda raw: 0 if raw is None else None if raw < 0 else raw
    if c_type in _SCALAR_DEFAULTS:
        absent = _SCALAR_DEFAULTS[c_type]
        return lambda raw: absent if raw is None else raw
    if c_type in _GENERIC:
        return lambda raw: None if raw is None else _node(raw) if isinstance(raw, dict) else _nodes(raw)
    specific = getattr(ast, c_type.rstrip("*"), None)
    if isinstance(specific, type) and issubclass(specific, ast.Node):
        return lambda raw: None if raw is None else _lazy(specific, raw) if isinstance(raw, dict) else _nodes(raw)
    if c_type == "Bitmapset*":
        return lambda raw: None if raw is None else set(raw)
    return lambda raw: raw


def _nodes(raw: list[Any]) -> tuple[Any, ...]:
    return tuple(_node(item) for item in raw)


_SCALAR_DEFAULTS: dict[str, Any] = {
    "bool": False,
    "char": "\x00",
    "Cardinality": 0.0,
    "Cost": 0.0,
    **{c_type: 0 for c_type in _INTEGERS},
}
