"""``POST /process/execute``: one command, one fresh shell, combined output.

The daemon (``apps/daemon/pkg/toolbox/process/execute.go``) starts the shell it picks in
a new process group, pipes the command text into its stdin (so ``cat`` in the command
reads the rest of the script), sends stdout and stderr into one buffer and, when a
``timeout`` (seconds) is given, SIGKILLs the group when it runs out and answers ``408``
``PROCESS_EXECUTION_TIMEOUT`` "command execution timeout", dropping the output. There is
no default timeout. A command that cannot start (bad ``cwd``) answers 200 with exit code
-1 and the error as ``result``. Here the shell is a ``docker exec`` whose process is its
own group leader; it reports its pid first so the group can be killed.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from tests.fakes.daytona.engine import STDOUT
from tests.fakes.daytona.errors import DaemonError

if TYPE_CHECKING:
    from tests.fakes.daytona.runtime import Runtime

_LAUNCH = r"""
if [ -n "$1" ]; then
    cd -- "$1" 2>/dev/null || { printf 'E:chdir %s: no such file or directory\n' "$1"; exit 1; }
fi
echo "$$"
shift
exec "$@" 2>&1
"""


async def execute(
    runtime: Runtime,
    command: str,
    *,
    cwd: str | None,
    env: dict[str, str] | None,
    timeout: int | None,
) -> dict[str, object]:
    if not command.strip():
        raise DaemonError(400, "command cannot be empty or whitespace-only")
    identity = runtime.identity
    exec_id, stream = await runtime.containers.open(
        runtime.container.id,
        ["/bin/sh", "-c", _LAUNCH, "execute", cwd or "", identity.shell],
        user=identity.spec,
        workdir=identity.workdir,
        env=env,
    )
    output = bytearray()
    pid: int | None = None
    failure: str | None = None

    async def collect() -> None:
        nonlocal pid, failure
        await stream.write(command.encode())
        stream.close_stdin()
        head = bytearray()
        while (piece := await stream.read()) is not None:
            if piece[0] != STDOUT:
                continue
            if pid is None:
                head.extend(piece[1])
                if b"\n" in head:
                    first, _, rest = bytes(head).partition(b"\n")
                    if first.startswith(b"E:"):
                        failure = first[2:].decode(errors="replace")
                        return
                    pid = int(first)
                    output.extend(rest)
                continue
            output.extend(piece[1])

    try:
        work = runtime.guard(collect())
        if timeout and timeout > 0:
            try:
                await asyncio.wait_for(work, timeout)
            except TimeoutError:
                if pid is not None:
                    await runtime.kill_tree(pid, grace_tenths=0)
                raise DaemonError(
                    408, "command execution timeout", "PROCESS_EXECUTION_TIMEOUT"
                ) from None
        else:
            await work
    finally:
        stream.close()
    if failure is not None:
        return {"exitCode": -1, "result": failure}
    code = await runtime.containers.engine.exec_exit_code(exec_id)
    return {"exitCode": -1 if code is None else code, "result": output.decode(errors="replace")}
