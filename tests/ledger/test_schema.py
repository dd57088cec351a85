"""Argument descriptions: the messages a clerk sees, and that every method is described."""

from __future__ import annotations

import pytest

from ledger.contracts import VERSIONS
from ledger.contracts.base import Method
from ledger.contracts.schema import (Enum, Int, List, OneOf, Plain, Record, Str, calendar_date, cents,
                                     identifier)
from ledger.errors import ContractError
from ledger.receipt import ERR_BAD_ARGS

RECORD = Record("test", {
    "name": identifier("a name", "n-1", max_len=8),
    "n": Int("a count", 1, minimum=1, maximum=9),
    "kind": Enum("a kind", ("pass", "fail")),
    "rows": List("rows", Record("row", {"day": calendar_date("a day", "2026-01-02"),
                                        "cents": cents("money", 5)}, optional=("cents",)),
                 max_items=2),
}, optional=("kind",))
GOOD = {"name": "n-1", "n": 3, "rows": [{"day": "2026-01-02"}, {"day": "2026-02-28", "cents": 7}]}


def message(value) -> str:
    with pytest.raises(ContractError) as err:
        RECORD.check(value, "args")
    assert err.value.code == ERR_BAD_ARGS
    return err.value.message


def test_a_valid_value_passes_unchanged() -> None:
    before = repr(GOOD)
    RECORD.check(GOOD, "args")
    assert repr(GOOD) == before


@pytest.mark.parametrize("change, expected", [
    ({"name": ""}, "args.name: expected a string of 1..8 characters"),
    ({"name": "x" * 9}, "args.name: expected a string of 1..8 characters"),
    ({"name": "a b"}, "args.name: expected 1..8 letters, digits, '.', '_', '-', not starting with "
                      "'.', '_' or '-', got 'a b'"),
    ({"n": 0}, "args.n: expected an integer in 1..9"),
    ({"n": True}, "args.n: expected an integer in 1..9"),
    ({"n": 2.0}, "args.n: expected an integer in 1..9"),
    ({"kind": "maybe"}, "args.kind: expected one of pass, fail, got 'maybe'"),
    ({"rows": []}, "args.rows: expected a list of 1..2 items"),
    ({"rows": [{"day": "2026-01-02"}] * 3}, "args.rows: expected a list of 1..2 items"),
    ({"rows": [{"day": "2026-01-02"}, {}]}, "args.rows[1]: missing day"),
    ({"rows": [{"day": "2026-13-01"}]}, "args.rows[0].day: '2026-13-01' is not a calendar date"),
    ({"rows": [{"day": "2026-01-02", "cents": 0}]}, "args.rows[0].cents: expected an integer in "
                                                   "1..1000000000000"),
    ({"rows": ["x"]}, "args.rows[0]: expected a map with day, cents"),
    ({"extra": 1, "more": 2}, "args: unknown field(s) 'extra', 'more'"),
])
def test_messages_name_the_place_and_the_rule(change, expected) -> None:
    assert message({**GOOD, **change}) == expected


def test_record_level_messages() -> None:
    assert message([1]) == "args: expected a map with name, n, kind, rows"
    assert message({"n": 1}) == "args: missing name, rows"
    assert message({**GOOD, 5: 1}) == "args: unknown field(s) 5"


def test_long_values_are_cut_in_messages() -> None:
    field = Str("code", "1", max_len=100, pattern=r"[0-9]+", pattern_help="digits")
    with pytest.raises(ContractError) as err:
        field.check("x" * 100, "args.code")
    assert err.value.message == f"args.code: expected digits, got '{'x' * 36}..."


def test_plain_values() -> None:
    field = Plain("v", 1, max_bytes=8)
    field.check({"a": [1, b"x"]}, "args.value")
    for value, expected in ((None, "args.value: must not be nil (use delete)"),
                            ("x" * 8, "args.value: 9 bytes packed, at most 8"),
                            ({1.5: 1}, "args.value: map keys must be str, int or bytes")):
        with pytest.raises(ContractError) as err:
            field.check(value, "args.value")
        assert err.value.message == expected


def test_json_schema_follows_the_description() -> None:
    schema = RECORD.json_schema()
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert schema["required"] == ["name", "n", "rows"]
    assert schema["properties"]["n"] == {"type": "integer", "minimum": 1, "maximum": 9,
                                         "description": "a count (integer 1..9)", "examples": [1]}
    row = schema["properties"]["rows"]["items"]
    assert row["required"] == ["day"] and row["properties"]["day"]["pattern"] == "^(?:[0-9]{4}-[0-9]{2}-[0-9]{2})$"
    assert schema["properties"]["kind"]["enum"] == ["pass", "fail"]
    assert schema["examples"] == [RECORD.example]


ALL_METHODS = [(name, version, method_name, m) for name, versions in VERSIONS.items()
               for version, contract in versions.items() for method_name, m in contract.methods.items()]


@pytest.mark.parametrize("contract, version, name, method", ALL_METHODS,
                         ids=[f"{c}.v{v}.{n}" for c, v, n, _ in ALL_METHODS])
def test_every_method_is_described_and_its_example_is_valid(contract, version, name, method) -> None:
    assert isinstance(method, Method) and method.summary
    assert isinstance(method.args, (Record, OneOf))
    method.args.check(method.args.example, "args")
    records = method.args.variants.values() if isinstance(method.args, OneOf) else [method.args]
    for record in records:
        for field in record.fields.values():
            assert field.description and field.help()
