"""Contract arguments, described once.

Each method's arguments are one `Record` of typed fields.  That one
description
  * validates a call inside execution: the first problem becomes a
    `bad_args` receipt naming its place, e.g.
    `args.items[1].amount_cents: expected an integer in 1..1000000000000`;
  * renders as JSON Schema for /openapi.json (node/api/openapi_contracts.py);
  * gives the CLI its options and their help (cli/contract_cli.py).

Validation never changes a value: a tx's args are recorded exactly as sent,
and the method reads them as they are.  Checks that need the chain's state
(does the receipt exist, does the organisation hold the lot) belong to the
method, not here.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any, Callable, Mapping

from .. import codec
from ..errors import ContractError, DecodeError
from ..receipt import ERR_BAD_ARGS

MAX_SHOWN = 40      # characters of a bad value quoted back in a message


def _bad(path: str, what: str) -> ContractError:
    return ContractError(ERR_BAD_ARGS, f"{path}: {what}")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN - 3] + "..."


class Field:
    """One typed argument: `check` raises ContractError(bad_args) or returns None."""

    __slots__ = ("description", "example")

    def __init__(self, description: str, example: Any) -> None:
        self.description = description
        self.example = example

    def check(self, value: Any, path: str) -> None:
        raise NotImplementedError

    def constraint(self) -> str:
        """The rule in a few words, for help texts ("8 digits", "1..100")."""
        raise NotImplementedError

    def json_schema(self) -> dict[str, Any]:
        raise NotImplementedError

    def help(self) -> str:
        return f"{self.description} ({self.constraint()})"

    def _doc(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {**schema, "description": self.help(), "examples": [self.example]}


class Str(Field):
    __slots__ = ("min_len", "max_len", "pattern", "pattern_help", "extra")

    def __init__(self, description: str, example: str, *, max_len: int, min_len: int = 1,
                 pattern: str | None = None, pattern_help: str | None = None,
                 extra: Callable[[str], str | None] | None = None) -> None:
        """`pattern` must match the whole string and is described as `pattern_help`;
        `extra` is a further check returning what is wrong, or None."""
        super().__init__(description, example)
        self.min_len, self.max_len = min_len, max_len
        self.pattern = re.compile(pattern) if pattern else None
        self.pattern_help = pattern_help or (f"a match of {pattern}" if pattern else None)
        self.extra = extra

    def check(self, value: Any, path: str) -> None:
        if type(value) is not str or not self.min_len <= len(value) <= self.max_len:
            raise _bad(path, f"expected a string of {self.min_len}..{self.max_len} characters")
        if self.pattern is not None and not self.pattern.fullmatch(value):
            raise _bad(path, f"expected {self.pattern_help}, got {_shown(value)}")
        if self.extra is not None and (problem := self.extra(value)):
            raise _bad(path, problem)

    def constraint(self) -> str:
        if self.pattern_help:
            return self.pattern_help
        return f"text of {self.min_len}..{self.max_len} characters"

    def json_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "string", "minLength": self.min_len, "maxLength": self.max_len}
        if self.pattern is not None:
            schema["pattern"] = f"^(?:{self.pattern.pattern})$"
        return self._doc(schema)


class Int(Field):
    __slots__ = ("minimum", "maximum")

    def __init__(self, description: str, example: int, *, minimum: int, maximum: int) -> None:
        super().__init__(description, example)
        self.minimum, self.maximum = minimum, maximum

    def check(self, value: Any, path: str) -> None:
        if type(value) is not int or not self.minimum <= value <= self.maximum:
            raise _bad(path, f"expected an integer in {self.minimum}..{self.maximum}")

    def constraint(self) -> str:
        return f"integer {self.minimum}..{self.maximum}"

    def json_schema(self) -> dict[str, Any]:
        return self._doc({"type": "integer", "minimum": self.minimum, "maximum": self.maximum})


class Enum(Field):
    __slots__ = ("values",)

    def __init__(self, description: str, values: tuple[str, ...]) -> None:
        super().__init__(description, values[0])
        self.values = values

    def check(self, value: Any, path: str) -> None:
        if type(value) is not str or value not in self.values:
            raise _bad(path, f"expected one of {', '.join(self.values)}, got {_shown(value)}")

    def constraint(self) -> str:
        return "one of " + ", ".join(self.values)

    def json_schema(self) -> dict[str, Any]:
        return self._doc({"type": "string", "enum": list(self.values)})


class List(Field):
    __slots__ = ("item", "min_items", "max_items")

    def __init__(self, description: str, item: Field, *, max_items: int, min_items: int = 1,
                 example: list | None = None) -> None:
        super().__init__(description, [item.example] * min_items if example is None else example)
        self.item, self.min_items, self.max_items = item, min_items, max_items

    def check(self, value: Any, path: str) -> None:
        if type(value) is not list or not self.min_items <= len(value) <= self.max_items:
            raise _bad(path, f"expected a list of {self.min_items}..{self.max_items} items")
        check = self.item.check
        for i, item in enumerate(value):
            check(item, f"{path}[{i}]")

    def constraint(self) -> str:
        return f"{self.min_items}..{self.max_items} items, each {self.item.constraint()}"

    def json_schema(self) -> dict[str, Any]:
        return self._doc({"type": "array", "items": self.item.json_schema(),
                          "minItems": self.min_items, "maxItems": self.max_items})


class Record(Field):
    """A map of named fields; `optional` names the ones that may be left out."""

    __slots__ = ("fields", "optional", "_names", "_all", "_required", "_plan")

    def __init__(self, description: str, fields: Mapping[str, Field],
                 optional: tuple[str, ...] = ()) -> None:
        unknown = set(optional) - set(fields)
        assert not unknown, f"optional names no field: {unknown}"
        super().__init__(description, {name: f.example for name, f in fields.items()})
        self.fields = dict(fields)
        self.optional = frozenset(optional)
        self._names = ", ".join(fields)
        self._all = frozenset(fields)
        self._required = self._all - self.optional
        # path -> ((name, check, path of the field), ...): built once per place a
        # record is checked at (bounded by the schema's shape), not per call.
        self._plan: dict[str, tuple] = {}

    def check(self, value: Any, path: str) -> None:
        if type(value) is not dict:
            raise _bad(path, f"expected a map with {self._names}")
        keys = value.keys()
        if not self._required <= keys:
            missing = [n for n in self.fields if n not in value and n not in self.optional]
            raise _bad(path, f"missing {', '.join(missing)}")
        if not keys <= self._all:
            unknown = sorted(repr(k) for k in value if k not in self.fields)
            raise _bad(path, f"unknown field(s) {', '.join(unknown)}")
        plan = self._plan.get(path)
        if plan is None:
            plan = self._plan[path] = tuple((name, f.check, f"{path}.{name}") for name, f in self.fields.items())
        for name, check, where in plan:
            if name in value:
                check(value[name], where)

    def constraint(self) -> str:
        return "a map with " + ", ".join(n + ("?" if n in self.optional else "") for n in self.fields)

    def json_schema(self) -> dict[str, Any]:
        return self._doc({
            "type": "object",
            "properties": {name: f.json_schema() for name, f in self.fields.items()},
            "required": [n for n in self.fields if n not in self.optional],
            "additionalProperties": False,
        })


class Bool(Field):
    __slots__ = ()

    def check(self, value: Any, path: str) -> None:
        if type(value) is not bool:
            raise _bad(path, "expected true or false")

    def constraint(self) -> str:
        return "true or false"

    def json_schema(self) -> dict[str, Any]:
        return self._doc({"type": "boolean"})


class OneOf(Field):
    """A map whose `tag` field picks which record describes the rest of it
    (e.g. a governance proposal: `action` decides what `params` holds)."""

    __slots__ = ("tag", "variants", "_names")

    def __init__(self, description: str, tag: str, variants: Mapping[str, Record]) -> None:
        first = next(iter(variants))
        super().__init__(description, {tag: first, **variants[first].example})
        self.tag = tag
        self.variants = dict(variants)
        self._names = ", ".join(variants)

    def check(self, value: Any, path: str) -> None:
        if type(value) is not dict:
            raise _bad(path, f"expected a map with {self.tag} and its fields")
        choice = value.get(self.tag)
        if type(choice) is not str or choice not in self.variants:
            raise _bad(f"{path}.{self.tag}", f"expected one of {self._names}, got {_shown(choice)}")
        self.variants[choice].check({k: v for k, v in value.items() if k != self.tag}, path)

    def constraint(self) -> str:
        return f"a map with {self.tag} (one of {self._names}) and the fields that {self.tag} takes"

    def json_schema(self) -> dict[str, Any]:
        options = []
        for name, record in self.variants.items():
            schema = record.json_schema()
            schema["title"] = name
            schema["properties"] = {self.tag: {"const": name, "description": record.description},
                                    **schema["properties"]}
            schema["required"] = [self.tag, *schema["required"]]
            options.append(schema)
        return self._doc({"type": "object", "oneOf": options})


class Plain(Field):
    """Any plain msgpack value but nil, at most `max_bytes` packed (kv values)."""

    __slots__ = ("max_bytes",)

    def __init__(self, description: str, example: Any, *, max_bytes: int) -> None:
        super().__init__(description, example)
        self.max_bytes = max_bytes

    def check(self, value: Any, path: str) -> None:
        if value is None:   # nil is how a query says "absent"
            raise _bad(path, "must not be nil (use delete)")
        try:
            codec.check_plain(value, path)
        except DecodeError as exc:
            raise ContractError(ERR_BAD_ARGS, str(exc)) from None
        size = len(codec.pack(value))
        if size > self.max_bytes:
            raise _bad(path, f"{size} bytes packed, at most {self.max_bytes}")

    def constraint(self) -> str:
        return f"any value but null, at most {self.max_bytes} bytes as msgpack"

    def json_schema(self) -> dict[str, Any]:
        return self._doc({"not": {"type": "null"}})


# -- building blocks the contracts share ------------------------------------------------

# Identifiers that become parts of state keys: no "/" (it delimits key parts),
# no spaces, ASCII only, so every node and every URL spells them one way.
ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]*"
ORG_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"      # ledger.genesis.NAME_RE
HASH_HEX_PATTERN = r"[0-9a-f]{64}"
DATE_PATTERN = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
MAX_CENTS = 10**12            # 10 billion yuan: above any single receipt or receivable


def identifier(description: str, example: str, max_len: int = 64) -> Str:
    return Str(description, example, max_len=max_len, pattern=ID_PATTERN,
               pattern_help=f"1..{max_len} letters, digits, '.', '_', '-', not starting with "
                            "'.', '_' or '-'")


def organisation(description: str, example: str) -> Str:
    return Str(description, example, max_len=64, pattern=ORG_PATTERN,
               pattern_help="an organisation name from the chain's configuration")


def cents(description: str, example: int, minimum: int = 1) -> Int:
    return Int(description, example, minimum=minimum, maximum=MAX_CENTS)


def _calendar_problem(text: str) -> str | None:
    try:
        date.fromisoformat(text)
    except ValueError:
        return f"{text!r} is not a calendar date"
    return None


def calendar_date(description: str, example: str) -> Str:
    return Str(description, example, min_len=10, max_len=10, pattern=DATE_PATTERN,
               pattern_help="a date YYYY-MM-DD", extra=_calendar_problem)


def text(description: str, example: str, max_len: int) -> Str:
    return Str(description, example, max_len=max_len)
