"""One command, one container: the fast path for a one-off SANDBOX command.

A session keeps an executor in its sandbox so that many commands cost a round trip each;
a one-off command (``execute_command(mode="sandbox")``, the plan's ``execute_in_sandbox``)
has only one, so its container runs the command itself as its main process: created with
the runner's secure defaults, attached (so output streams live), started, and gone when the
command ends (``--init`` ends every process left when bash exits; auto-remove removes it).
The timeout and cancellation kill the container, which takes the whole tree with it. Nothing
here needs python3 in the image.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

from agent_runner.backends.base import (
    CommandOutcome,
    CommandRequest,
    HostKeptState,
    ProcessEvents,
    ProcessRequest,
    ShellState,
)
from agent_runner.backends.docker.engine import Engine
from agent_runner.backends.docker.spec import WORKSPACE
from agent_runner.backends.executor import LONG_COMMAND, bash_arguments
from agent_runner.errors import ModeUnavailable, SandboxUnavailable, SessionClosed, first_line
from agent_runner.output import OutputCollector
from agent_runner.results import TIMEOUT_EXIT_CODE, Stream

SCRIPT_FROM_STDIN = (
    "cat >| /tmp/.stigmer-script || exit 126; exec 3< /tmp/.stigmer-script 0</dev/null; "
    'rm -f /tmp/.stigmer-script; exec "$@"'
)
"""For a command too long for one argument: its text arrives on stdin, goes to a file on
fd 3 (where the wrapper reads it), and the command itself gets an empty stdin."""
KILL_SECONDS = 30.0
"""How long an ended (or killed) container may take to report its exit status."""

Create = Callable[[list[str], dict[str, str], str, bool], Coroutine[Any, Any, str]]
"""Creates the container that runs argv (with env, in a cwd, stdin or not); its id."""


class _Output:
    """The attached stream's output into the collector; its end is the command's end."""

    def __init__(self, output: OutputCollector) -> None:
        self._output = output
        self.ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def stdout_received(self, data: bytes) -> None:
        self._output.feed(Stream.STDOUT, data)

    def stderr_received(self, data: bytes) -> None:
        self._output.feed(Stream.STDERR, data)

    def connection_lost(self, error: BaseException | None) -> None:
        if not self.ended.done():
            self.ended.set_result(None)


class OneShotShell(HostKeptState):
    """The shell of a one-off session: its single command is its container."""

    def __init__(self, engine: Engine, create: Create, env: dict[str, str]) -> None:
        self._engine = engine
        self._create = create
        self._state = ShellState(WORKSPACE, dict(env))
        self._container: str | None = None
        self._used = False

    @property
    def sandbox_id(self) -> str | None:
        return self._container[:12] if self._container else None

    async def run(self, request: CommandRequest, output: OutputCollector) -> CommandOutcome:
        if self._used:
            raise SessionClosed("a one-off sandbox runs one command")
        self._used = True
        long = len(request.command) > LONG_COMMAND
        argv = ["bash", *bash_arguments(request.command, None, 3 if long else None)]
        if long:
            argv = ["bash", "-c", SCRIPT_FROM_STDIN, "bash", *argv]
        env = {**self._state.env, **request.env}
        self._container = container = await self._create(argv, env, self._state.cwd, long)
        engine = self._engine
        api = await engine.api()
        try:
            return await self._run(api, container, request, output, long)
        finally:
            if engine.cleanup:
                engine.remove_later(container)

    async def _run(
        self,
        api: Any,
        container: str,
        request: CommandRequest,
        output: OutputCollector,
        long: bool,
    ) -> CommandOutcome:
        """Attach, start, stream until the container's output ends (it ends with bash:
        ``--init`` takes every other process down), then ask how it ended."""
        engine, errors = self._engine, self._engine.errors
        receiver = _Output(output)
        path = f"/containers/{container}/attach?stream=1&stdout=1&stderr=1"
        stream = await engine.open_stream(path + ("&stdin=1" if long else ""), None, receiver)
        output.set_flow_control(stream.pause_reading, stream.resume_reading)
        timed_out = False
        try:
            try:
                await engine.call(api.start, container)
            except errors.APIError as error:
                raise _start_failed(error) from None
            if long:
                stream.write(request.command.encode("utf-8", "surrogateescape"))
                stream.close_stdin()
            try:
                await asyncio.wait_for(asyncio.shield(receiver.ended), request.timeout)
            except TimeoutError:
                timed_out = True
                await self._kill(api, container)
            status = await engine.call(api.wait, container, timeout=KILL_SECONDS)
        except BaseException:
            await asyncio.shield(self._kill(api, container))
            raise
        finally:
            output.clear_flow_control()
            stream.close()
        if timed_out:
            return CommandOutcome(TIMEOUT_EXIT_CODE, timed_out=True)
        code = int(status.get("StatusCode", 1))
        return CommandOutcome(code, oom_killed=code == 137 and await self._oom(api, container))

    async def _kill(self, api: Any, container: str) -> None:
        with contextlib.suppress(self._engine.errors.APIError):  # it may have ended already
            await self._engine.call(api.kill, container)

    async def _oom(self, api: Any, container: str) -> bool:
        """Whether the memory limit killed it (asked only after a SIGKILL exit)."""
        try:
            details = await self._engine.call(api.inspect_container, container)
        except self._engine.errors.APIError:
            return False
        return bool(details.get("State", {}).get("OOMKilled"))

    async def start(self, request: ProcessRequest, events: ProcessEvents) -> Any:
        raise ModeUnavailable("a one-off sandbox runs one command; open a session for processes")

    async def close(self) -> None:
        self._used = True


def _start_failed(error: Exception) -> SandboxUnavailable:
    text = first_line(error)
    if "executable file not found" in text or "no such file or directory" in text:
        return SandboxUnavailable(
            f"the sandbox image has no bash ({text}); sandbox images need bash"
        )
    return SandboxUnavailable(f"could not start a sandbox: {text}")
