"""Sessions that outlive one ``agent-runner exec`` process.

``agent-runner exec --session ID`` is a new process each time, so the session's working
directory and the variables its commands exported or unset are written to a small file
between invocations. Only the difference from the invoking environment is stored, so the
host's other variables (secrets included) never reach the disk.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from agent_runner.backends.base import VOLATILE_VARIABLES, ShellState
from agent_runner.errors import InvalidSetting

STATE_DIR_VARIABLE = "STIGMER_STATE_DIR"


@dataclass(frozen=True)
class SavedSession:
    cwd: str
    variables: dict[str, str] = field(default_factory=dict)
    unset: tuple[str, ...] = ()


class SessionStore:
    """One JSON file per session id, readable by its owner only."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @classmethod
    def default(cls) -> SessionStore:
        explicit = os.environ.get(STATE_DIR_VARIABLE)
        base = Path(explicit).expanduser() if explicit else Path.home() / ".stigmer" / "sessions"
        return cls(base)

    def _path(self, execution_id: str) -> Path:
        return self.directory / f"{execution_id}.json"

    def load(self, execution_id: str) -> SavedSession | None:
        path = self._path(execution_id)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return SavedSession(data["cwd"], dict(data["variables"]), tuple(data["unset"]))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            raise InvalidSetting(
                f"session state {path} is unreadable; delete it to start the session afresh"
            ) from None

    def save(self, execution_id: str, state: ShellState | None) -> None:
        if state is None:
            return
        host = os.environ
        variables = {k: v for k, v in state.env.items() if host.get(k) != v}
        unset = sorted(k for k in host if k not in state.env and k not in VOLATILE_VARIABLES)
        payload = {"cwd": state.cwd, "variables": variables, "unset": unset}
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self._path(execution_id)
        temporary = path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle)
        os.replace(temporary, path)
