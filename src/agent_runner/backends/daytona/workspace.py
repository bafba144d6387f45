"""The host's workspace and a Daytona sandbox: copied in once, changes copied back on request.

A cloud sandbox cannot bind-mount a directory of the runner's machine, so ``copy`` (the
default here) packs the workspace into one tar, uploads it (one request, streamed from
disk) and the shell's setup unpacks it into ``~/workspace``, leaving a marker whose time
tells later which files commands changed. ``download`` packs those files in the sandbox
(new and modified ones; deletions are not carried back) and unpacks them over the host's
workspace, refusing anything that would land outside it. ``none`` starts in an empty
``~/workspace``. ``bind`` is an error that says so.
"""

from __future__ import annotations

import os
import tarfile
import tempfile
from pathlib import Path

from agent_runner.config import Settings
from agent_runner.errors import InvalidSetting, WorkingDirectoryMissing


def workspace_mode(settings: Settings) -> str:
    """``copy`` unless set; ``bind`` is refused."""
    sandbox = settings.sandbox
    if "workspace" not in sandbox.model_fields_set:
        return "copy"
    if sandbox.workspace == "bind":
        raise InvalidSetting(
            "a Daytona sandbox cannot bind-mount the host's workspace (it runs in the "
            "cloud): set execution.sandbox.workspace to copy (upload it, download changes "
            "back on request) or none"
        )
    return sandbox.workspace


def workspace_dir(cwd: str | None) -> Path:
    path = Path(cwd or os.getcwd()).resolve()
    if not path.is_dir():
        raise WorkingDirectoryMissing(
            f"workspace {path} does not exist or is not a directory; pass an existing --cwd "
            "or set execution.sandbox.workspace to none"
        )
    return path


def pack(workspace: Path) -> str:
    """The workspace as a tar in a temporary file (the caller removes it)."""
    handle, path = tempfile.mkstemp(prefix="stigmer-workspace-", suffix=".tar")
    os.close(handle)
    try:
        with tarfile.open(path, "w") as tar:
            tar.add(workspace, arcname=".")
    except BaseException:
        os.unlink(path)
        raise
    return path


def unpack(archive: str, target: Path) -> list[str]:
    """Unpack the changed files over ``target``; their paths, relative to it.

    Python's ``data`` filter refuses absolute paths, ``..``, links out of the target and
    device files, so a sandbox cannot write outside the workspace.
    """
    with tarfile.open(archive, "r") as tar:
        members = [m for m in tar.getmembers() if m.isfile() or m.issym()]
        tar.extractall(target, members=members, filter="data")
    return sorted(os.path.normpath(m.name) for m in members)
