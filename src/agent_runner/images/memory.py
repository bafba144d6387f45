"""Pulls that failed, remembered for a while so the next commands do not try again at once.

Without it, every ``agent-runner exec --mode sandbox`` on a machine without registry
access would ask the registry again, print the same fallback warning again and, behind a
firewall that drops packets, wait for a timeout each time. A failure is remembered per
image for :data:`REMEMBER_SECONDS`, together with a fingerprint of the credentials it was
tried with, so a ``docker login`` in between counts as something new and is tried at
once. ``agent-runner image pull`` and ``image ensure --refresh`` ignore the memory.

One small JSON file in the cache directory, written whole and atomically; a damaged or
unreadable file is treated as empty, since forgetting costs only one more pull.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from agent_runner.images.cache import cache_dir

REMEMBER_SECONDS = 3600.0
FILE_NAME = "pull-failures.json"


@dataclass(frozen=True)
class Failure:
    """One failed pull: what the registry said, classified, and when."""

    image: str
    message: str
    """The one line that was reported (``cannot pull ...: ...``)."""
    kind: str
    at: float
    """Seconds since the epoch."""
    credentials: str
    """Fingerprint of the credentials sent (``anonymous`` when none were)."""

    def retry_at(self, remember: float) -> str:
        return time.strftime("%H:%M", time.localtime(self.at + remember))


class PullMemory:
    """The remembered failures in ``directory`` (default: the cache directory)."""

    def __init__(self, directory: Path | None = None, *, remember: float = REMEMBER_SECONDS):
        self.directory = directory
        self.remember = remember

    @property
    def path(self) -> Path:
        return (self.directory or cache_dir()) / FILE_NAME

    def recent(self, image: str, credentials: str, now: float | None = None) -> Failure | None:
        """The failure of ``image`` with these credentials, if it is recent enough to trust."""
        entry = self._read().get(image)
        if entry is None:
            return None
        now = time.time() if now is None else now
        if entry.credentials != credentials or not 0 <= now - entry.at < self.remember:
            return None
        return entry

    def remember_failure(self, failure: Failure) -> None:
        entries = self._read()
        entries[failure.image] = failure
        self._write(entries)

    def forget(self, image: str) -> None:
        entries = self._read()
        if entries.pop(image, None) is not None:
            self._write(entries)

    def _read(self) -> dict[str, Failure]:
        try:
            raw: Any = json.loads(self.path.read_text(encoding="utf-8"))
            return {image: Failure(**fields) for image, fields in raw.items()}
        except (OSError, ValueError, TypeError, AttributeError):
            return {}

    def _write(self, entries: dict[str, Failure]) -> None:
        path = self.path
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump({image: asdict(entry) for image, entry in entries.items()}, handle)
            os.replace(temporary, path)
        except OSError:
            temporary.unlink(missing_ok=True)  # a memory that cannot be kept is no memory
