"""What every subcommand shares: the one-line usage errors, help, printing and rendering."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, NoReturn

from pydantic import SecretStr

USAGE_ERROR = 2

Subcommands = Any
"""argparse's ``_SubParsersAction``, which it does not export under a public name."""


class Parser(argparse.ArgumentParser):
    """Usage errors as one line with a pointer to help, not a usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def show_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return USAGE_ERROR


def emit(text: str) -> int:
    print(text)
    return 0


SECRET = "***"
"""What a secret setting (an API key) shows as, wherever settings are printed."""


def jsonable(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return SECRET
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [jsonable(item) for item in value]
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)


def render(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, SecretStr):
        return SECRET
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | dict):
        return json.dumps(jsonable(value))
    return str(value)
