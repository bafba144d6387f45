"""``agent-runner config get|set|list|path``: the settings and where each value came from."""

from __future__ import annotations

import argparse
import json
from typing import Any

from agent_runner.cli.common import SECRET, Parser, Subcommands, emit, jsonable, render, show_help
from agent_runner.config import config_path, find_key, resolve, setting_keys, text_to_value
from agent_runner.config.file import ConfigFile
from agent_runner.errors import InvalidSetting


def add_parsers(commands: Subcommands) -> None:
    config = commands.add_parser("config", help="read and change settings")
    config.set_defaults(handler=lambda _args: show_help(config))
    actions = config.add_subparsers(title="actions", metavar="ACTION", parser_class=Parser)
    get = actions.add_parser("get", help="print a setting's value")
    get.add_argument("key", help="e.g. execution.mode")
    get.set_defaults(handler=_get)
    put = actions.add_parser("set", help="write a setting to the config file")
    put.add_argument("key", help="e.g. execution.mode")
    put.add_argument("value")
    put.set_defaults(handler=_set)
    listing = actions.add_parser("list", help="every setting, its value and where it came from")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_list)
    path = actions.add_parser("path", help="print the config file's path")
    path.set_defaults(handler=lambda _args: emit(str(config_path())))


def _get(args: argparse.Namespace) -> int:
    setting = find_key(args.key)
    value = resolve().value(setting.key)
    return emit(render(value))


def _set(args: argparse.Namespace) -> int:
    setting = find_key(args.key)
    if setting.key == "auto.rules":
        raise InvalidSetting(
            f"edit {setting.public_name} in {config_path()} directly (it is a list of rules)"
        )
    value = _validated(setting.key, text_to_value(setting, args.value))
    ConfigFile(config_path()).set(setting.key, value)
    shown = SECRET if setting.is_secret else render(value)
    return emit(f"{setting.public_name} = {shown}  ({config_path()})")


def _validated(key: str, value: Any) -> Any:
    """Refuse a value the cascade would refuse, before it reaches the file."""
    resolve({key: value}, override_names={key: f"value for {key}"}, environ={})
    return _plain(value)


def _plain(value: Any) -> Any:
    """Numbers and booleans typed on the command line are written as such, not as text."""
    if not isinstance(value, str):
        return value
    lowered = value.lower()
    if lowered in {"true", "false"}:
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            continue
    return value


def _list(args: argparse.Namespace) -> int:
    resolved = resolve()
    rows = [
        (s.public_name, resolved.value(s.key), str(resolved.origins[s.key]), s.variable or "")
        for s in setting_keys()
    ]
    if args.json:
        payload = [
            {"key": key, "value": jsonable(value), "source": origin, "variable": variable}
            for key, value, origin, variable in rows
        ]
        return emit(json.dumps(payload, indent=2))
    width = max(len(row[0]) for row in rows)
    value_width = min(40, max(len(render(row[1])) for row in rows))
    for key, value, origin, _variable in rows:
        print(f"{key:<{width}}  {render(value):<{value_width}}  {origin}")
    return 0
