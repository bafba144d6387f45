"""Where image work keeps what must outlive one process: the failure memory and the locks.

``$STIGMER_CACHE_DIR``, else ``$XDG_CACHE_HOME/stigmer/agent-runner``, else
``~/.cache/stigmer/agent-runner``. Nothing in it is precious: deleting it only means the
next pull is tried at once. When it cannot be created (a read-only home in a container),
a per-user directory under the system's temporary directory takes its place.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

CACHE_DIR_VARIABLE = "STIGMER_CACHE_DIR"


def cache_dir(environ: dict[str, str] | None = None) -> Path:
    """The cache directory, created (mode 0700) if needed."""
    env = os.environ if environ is None else environ
    explicit = env.get(CACHE_DIR_VARIABLE)
    if explicit:
        chosen = Path(explicit).expanduser()
    else:
        xdg = env.get("XDG_CACHE_HOME")
        chosen = (Path(xdg) if xdg else Path.home() / ".cache") / "stigmer" / "agent-runner"
    try:
        chosen.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError:
        chosen = Path(tempfile.gettempdir()) / f"stigmer-agent-runner-{os.getuid()}"
        chosen.mkdir(parents=True, exist_ok=True, mode=0o700)
    return chosen


@contextmanager
def file_lock(path: Path, *, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (blocking: call it on a worker thread).

    A lock is tied to its open file, so it excludes other threads of this process as well
    as other processes, and the kernel drops it when its holder dies. ``on_wait`` is
    called once if someone else holds it, before waiting.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock
