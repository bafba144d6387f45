"""The Stigmer config file, read and written without losing what others put there.

The Go CLI owns the same file, so a write changes one key and keeps every other key,
comment and ordering as it was (ruamel's round-trip mode), and replaces the file atomically
so a crash never leaves half a file behind.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

from agent_runner.errors import ConfigFileError

SECTION = ("backend", "local", "execution")


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


class ConfigFile:
    """One config file on disk; missing is the same as empty."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def file_key(self, key: str) -> str:
        return ".".join((*SECTION, key))

    def execution_section(self) -> Mapping[str, Any]:
        """The ``backend.local.execution`` mapping, or an empty one."""
        node: Any = self._load()
        for depth, part in enumerate(SECTION):
            if node is None:
                return {}
            if not isinstance(node, Mapping):
                where = ".".join(SECTION[:depth]) or "the top level"
                raise ConfigFileError(f"config file {self.path}: {where} must be a mapping")
            node = node.get(part)
        if node is None:
            return {}
        if not isinstance(node, Mapping):
            raise ConfigFileError(f"config file {self.path}: {'.'.join(SECTION)} must be a mapping")
        return node

    def set(self, key: str, value: Any) -> None:
        """Write ``value`` at ``backend.local.execution.<key>``, keeping everything else."""
        document = self._load()
        if document is None:
            document = CommentedMap()
        node = document
        for part in (*SECTION, *key.split("."))[:-1]:
            child = node.get(part)
            if child is None:
                child = CommentedMap()
                node[part] = child
            elif not isinstance(child, Mapping):
                raise ConfigFileError(f"config file {self.path}: {part} must be a mapping")
            node = child
        node[key.split(".")[-1]] = value
        self._write(document)

    def _load(self) -> Any:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as error:
            raise ConfigFileError(
                f"config file {self.path}: cannot read: {error.strerror}"
            ) from None
        except UnicodeDecodeError as error:
            raise ConfigFileError(
                f"config file {self.path}: not UTF-8 text (byte {error.start}); "
                "fix the file or set STIGMER_CONFIG"
            ) from None
        try:
            return _yaml().load(text)
        except YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            problem = getattr(error, "problem", None) or "invalid YAML"
            raise ConfigFileError(
                f"config file {self.path}: {problem}{where}; fix the file or set STIGMER_CONFIG"
            ) from None

    def _write(self, document: Any) -> None:
        buffer = io.StringIO()
        _yaml().dump(document, buffer)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            mode = self.path.stat().st_mode & 0o777 if self.path.exists() else 0o644
            fd, temporary = tempfile.mkstemp(prefix=".config-", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(buffer.getvalue())
                os.chmod(temporary, mode)
                os.replace(temporary, self.path)
            except BaseException:
                os.unlink(temporary)
                raise
        except OSError as error:
            raise ConfigFileError(
                f"config file {self.path}: cannot write: {error.strerror}"
            ) from None
