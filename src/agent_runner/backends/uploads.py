"""Copying a host directory into a sandbox through its executor (the ``copy`` workspace).

Backend-neutral: the directory is packed into a tar spooled to a temporary file on a
worker thread (never held in memory whole), then streamed as one ``put`` request, which
the executor unpacks as the sandbox user, refusing anything that would land outside the
destination. Docker and Kubernetes both use it; on Kubernetes it is how the workspace gets
into a pod at all, as there is no host path to mount.
"""

from __future__ import annotations

import asyncio
import io
import tarfile
import tempfile
from pathlib import Path
from typing import IO

from agent_runner.backends.channel import ExecutorChannel, Report
from agent_runner.errors import SandboxUnavailable

PIECE = 1 << 20


def _archive(directory: Path) -> IO[bytes]:
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - the caller closes it
    try:
        with tarfile.open(fileobj=spool, mode="w") as tar:
            tar.add(directory, arcname=".")
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return spool


async def copy_directory(channel: ExecutorChannel, directory: Path, destination: str) -> None:
    """Copy ``directory`` into ``destination`` in the sandbox; the host is never written."""
    spool = await asyncio.to_thread(_archive, directory)
    number = channel.new_id()
    report = Report()
    channel.register(number, report)
    try:
        size = spool.seek(0, io.SEEK_END)
        spool.seek(0)
        await channel.send({"op": "put", "id": number, "path": destination, "size": size})
        while chunk := await asyncio.to_thread(spool.read, PIECE):
            await channel.write(chunk)
        outcome = await report.done
    except EOFError:
        raise SandboxUnavailable(
            f"the sandbox stopped while the workspace was copied in: {report.last_line()}"
        ) from None
    finally:
        spool.close()
        channel.forget(number)
    if outcome["exit_code"] != 0:
        raise SandboxUnavailable(f"could not copy the workspace in: {report.last_line()}")
