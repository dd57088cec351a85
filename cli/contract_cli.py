"""Department-friendly commands for contract methods, made from the methods'
own argument descriptions (ledger.contracts.schema).

For a method, `method_command` makes one click command whose options are the
method's arguments:
  * a text, number or choice field is `--field-name` (its help is the field's
    description, rule and example);
  * a nested record's fields are flattened: origin.base is `--origin-base`;
  * a list of records is a repeatable option named in the singular
    (`--item`), each value either JSON or `key=value,key=value`;
  * `--args JSON` gives the whole argument map instead.
The arguments are checked with the same description before anything is
signed, so a mistake is one clear line and no transaction; then the call is
signed with --key and submitted like `ynchain tx submit` (cli/submit.py),
waiting for its receipt unless --no-wait.  Exit status 1 when it is refused
or fails, with the contract's message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlencode

import click

from ledger.contracts import REGISTRY
from ledger.contracts.schema import Bool, Enum, Field, Int, List, Record
from ledger.errors import ContractError

from .errors import CliError
from .submit import MAX_WAIT_S, load_key_file, outcome_problem, send_call
from .target import client_for, json_option, node_option, print_fields, print_json

# Turns the assembled args (and the values of the command's extra options) into
# the method's args, e.g. hashing an identity number; gets the chain id.
Build = Callable[[dict, dict, str], dict]
Render = Callable[[dict], None]


EVENT_KEYS = ("event", "org", "account", "time_ms", "time", "height", "tx_id")


def yuan(cents: Any) -> str:
    """5000012550 -> '50,000,125.50 yuan' (integer arithmetic: no float ever touches money)."""
    if type(cents) is not int:
        return str(cents)
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100:,}.{abs(cents) % 100:02d} yuan"


def short_time(text: Any) -> str:
    """'2026-11-28T09:00:00+08:00' -> '2026-11-28 09:00:00' (block times are UTC+8)."""
    return str(text)[:19].replace("T", " ")


def event_details(event: dict) -> str:
    """What an event (ledger.contracts.history) did, beyond who and when, in words."""
    parts = []
    for key, value in event.items():
        if key in EVENT_KEYS:
            continue
        if key.endswith("_cents"):
            key, value = key.removesuffix("_cents"), yuan(value)
        elif key == "parts" and isinstance(value, list):         # receivable split: [id, cents, holder]
            value = " + ".join(f"{item[0]} ({yuan(item[1])} to {item[2]})" for item in value)
        elif key in ("inputs", "contents") and isinstance(value, list):   # trace: [lot, quantity]
            value = " + ".join(f"{item[1]} of {item[0]}" for item in value)
        parts.append(f"{key.replace('_', ' ')} {value}")
    return ", ".join(parts)


def page_query(limit: int, after: str | None) -> str:
    return urlencode({"limit": limit, **({"after": after} if after else {})})


def print_next(doc: dict) -> None:
    """Below a full page: how to get the next one."""
    if doc.get("next"):
        click.echo(f"more: --after {doc['next']}")


@dataclass(frozen=True, slots=True)
class _Opt:
    param: str                 # the click parameter name
    path: tuple[str, ...]      # where the value goes in the args map
    field: Field
    required: bool
    many: bool                 # a list: repeatable option


def _options(record: Record, prefix: tuple[str, ...] = (), parent_required: bool = True) -> list[_Opt]:
    out = []
    for name, field in record.fields.items():
        required = parent_required and name not in record.optional
        path = (*prefix, name)
        if isinstance(field, Record) and not prefix:
            out += _options(field, path, required)
        elif isinstance(field, List):
            out.append(_Opt(name.removesuffix("s") if not prefix else "_".join(path), path, field,
                            required, True))
        else:
            out.append(_Opt("_".join(path), path, field, required, False))
    return out


def _flag(param: str) -> str:
    return "--" + param.replace("_", "-")


def _help(field: Field) -> str:
    example = field.example if not isinstance(field, List) else field.item.example
    if isinstance(example, dict):
        example = ",".join(f"{k}={v}" for k, v in example.items())
    return f"{field.help()}. Example: {example}"


def _click_option(opt: _Opt, filled_in: bool = False) -> Callable:
    field = opt.field
    kind: Any = str
    if isinstance(field, Int):
        kind = int
    elif isinstance(field, Bool):
        kind = click.BOOL
    elif isinstance(field, Enum):
        kind = click.Choice(field.values)
    help_text = _help(field)
    if opt.many:
        item = field.item
        help_text = (f"{field.description} (repeat the option, {field.min_items}..{field.max_items} times); "
                     f"each {'JSON or key=value,...' if isinstance(item, Record) else 'a value'}: "
                     f"{_help(item)}")
    if not opt.required:
        help_text += " [optional]"
    elif filled_in:
        help_text += " [optional here: computed when left out]"
    return click.option(_flag(opt.param), opt.param, type=kind, multiple=opt.many, default=None,
                        help=help_text)


def _parse_record_text(text: str, record: Record, where: str) -> Any:
    """An item given on the command line: JSON, or key=value pairs typed by the record."""
    if text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise CliError(f"{where}: not valid JSON: {exc}") from None
    out: dict[str, Any] = {}
    for pair in text.split(","):
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or key not in record.fields:
            raise CliError(f"{where}: expected key=value pairs with keys from "
                           f"{', '.join(record.fields)}, got {pair.strip()!r}")
        if isinstance(record.fields[key], Int):
            try:
                out[key] = int(value.strip())
            except ValueError:
                raise CliError(f"{where}: {key} must be an integer, got {value.strip()!r}") from None
        else:
            out[key] = value.strip()
    return out


def _assemble(opts: list[_Opt], values: dict[str, Any]) -> dict[str, Any]:
    args: dict[str, Any] = {}
    for opt in opts:
        value = values.get(opt.param)
        if value is None or value == ():
            continue
        if opt.many:
            item = opt.field.item
            value = [_parse_record_text(v, item, f"{_flag(opt.param)} #{i + 1}")
                     if isinstance(item, Record) else v for i, v in enumerate(value)]
        target = args
        for part in opt.path[:-1]:
            target = target.setdefault(part, {})
        target[opt.path[-1]] = value
    return args


def _missing(opts: list[_Opt], args: dict[str, Any], skip: set[str]) -> list[str]:
    out = []
    for opt in opts:
        if not opt.required or opt.param in skip:
            continue
        target: Any = args
        for part in opt.path:
            if not isinstance(target, dict) or part not in target:
                out.append(_flag(opt.param))
                break
            target = target[part]
    return out


def check_args(contract: str, method: str, args: Any) -> None:
    try:
        REGISTRY[contract].methods[method].args.check(args, "args")
    except ContractError as exc:
        raise CliError(f"invalid arguments: {exc.message}") from None


def print_result(result: dict, render: Render | None) -> None:
    """What a person wants after a call: where it committed, then the contract's answer."""
    click.echo(f"tx {result.get('id')} committed at height {result.get('height')}")
    value = (result.get("receipt") or {}).get("result")
    if render is not None and isinstance(value, dict):
        render(value)
    elif isinstance(value, dict):
        print_fields(list(value.items()))


def run_call(node_url: str | None, key_file: str, contract: str, method: str, args: dict,
             wait: bool, timeout: float, valid_for: int, as_json: bool,
             render: Render | None = None, build: Build | None = None, extra: dict | None = None) -> None:
    key = load_key_file(key_file)

    def prepare(args: dict, chain_id: str) -> dict:
        if build is not None:
            args = build(args, extra or {}, chain_id)
        check_args(contract, method, args)
        return args

    result = send_call(node_url, key, contract, method, args, wait=wait, timeout_s=timeout,
                       valid_for=valid_for, prepare=prepare)
    problem = outcome_problem(result, wait, timeout)
    if as_json:
        print_json(result)
    elif not problem:
        if wait:
            print_result(result, render)
        else:
            click.echo(result["id"])
    if problem:
        raise CliError(problem)


def call_options(key_help: str = "Key file of the calling account.") -> list[Callable]:
    """The options of every command that signs and submits a call: --key, --node,
    --wait/--no-wait, --timeout, --valid-for, --json (see run_call)."""
    return [
        click.option("--key", "key_file", required=True, type=click.Path(dir_okay=False), help=key_help),
        node_option,
        click.option("--wait/--no-wait", default=True, show_default=True,
                     help="Wait for the commit and show the result."),
        click.option("--timeout", type=click.FloatRange(0.1, MAX_WAIT_S), default=20.0, show_default=True,
                     help="Seconds to wait for the commit."),
        click.option("--valid-for", type=click.IntRange(1), default=500, show_default=True,
                     help="Blocks from the current height during which the tx may be committed."),
        json_option,
    ]


def method_command(group: click.Group, contract: str, method: str, *, name: str | None = None,
                   optional: tuple[str, ...] = (), hidden: tuple[str, ...] = (),
                   extra_options: tuple[Callable, ...] = (), build: Build | None = None,
                   render: Render | None = None, epilog: str | None = None) -> click.Command:
    """Add `group NAME` calling contract.method.  `optional` names required
    fields that `build` fills in; `hidden` fields get no option (`build` sets
    them from `extra_options`)."""
    spec = REGISTRY[contract].methods[method]
    opts = [o for o in _options(spec.args) if o.param not in hidden]
    who = f"Needs an account with the {spec.role} role." if spec.role else "Any account may call it."

    def callback(node_url, key_file, args_json, wait, timeout, valid_for, as_json, **values):
        extra = {k: values.pop(k) for k in list(values) if k not in {o.param for o in opts}}
        if args_json is not None:
            given = [_flag(o.param) for o in opts if values.get(o.param) not in (None, ())]
            if given:
                raise click.UsageError(f"give --args or the options ({', '.join(given)}), not both")
            try:
                args = json.loads(args_json)
            except json.JSONDecodeError as exc:
                raise click.BadParameter(f"not valid JSON: {exc}", param_hint="--args") from None
        else:
            args = _assemble(opts, values)
            missing = _missing(opts, args, set(optional))
            if missing:
                raise click.UsageError(f"missing option(s) {', '.join(missing)}")
        run_call(node_url, key_file, contract, method, args, wait, timeout, valid_for, as_json,
                 render, build, extra)

    command = click.Command(name or method, callback=callback,
                            help=f"{spec.summary} ({contract}.{method}). {who}\n\n"
                                 "Options are the method's arguments; or give them all with --args.",
                            epilog=epilog)
    decorators = [
        *(_click_option(o, o.param in optional) for o in opts),
        *extra_options,
        click.option("--args", "args_json", metavar="JSON", default=None,
                     help="All arguments as one JSON object (instead of the options)."),
        *call_options(),
    ]
    for decorate in decorators:      # on a Command, each option is appended in turn
        command = decorate(command)
    group.add_command(command)
    return command
