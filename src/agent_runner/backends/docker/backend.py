"""SANDBOX on a Docker (or Podman) engine: one container per session.

The container's main process is the executor (:mod:`agent_runner.backends.executor`),
attached through the Engine API, so a command costs one round trip on an open stream
instead of a ``docker exec``. Hanging up the stream ends the executor and with it the
container (``--init`` plus auto-remove), which is also what happens when a runner dies.
This module answers *where* a sandbox lives (image, create, warm pool, remove); the shells
(:mod:`.shell`, :mod:`.exec_shell`) answer *how* commands run in it. Images, custom
requirements layers included, are :mod:`.images`'s; a session with requirements gets a
sandbox of its own on its layer, never one from the warm pool (those run the base image).
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import secrets
import tarfile
import tempfile
from contextlib import suppress
from pathlib import Path
from typing import IO, Any

from agent_runner.backends.base import CommandRequest, SandboxInfo, ShellSpec, ShellState
from agent_runner.backends.channel import ExecutorChannel, Report
from agent_runner.backends.docker.engine import Engine
from agent_runner.backends.docker.exec_shell import ExecShell
from agent_runner.backends.docker.images import DockerImages
from agent_runner.backends.docker.inventory import list_sandboxes, prune_orphans
from agent_runner.backends.docker.probe import contract, probe_settings
from agent_runner.backends.docker.sandbox import Sandbox
from agent_runner.backends.docker.spec import NO_BASH, NO_PYTHON, WORKSPACE, plan_container
from agent_runner.backends.executor import PROTOCOL_VERSION
from agent_runner.backends.executor_shell import ExecutorShell
from agent_runner.backends.owner import Owner
from agent_runner.config import Settings
from agent_runner.errors import AgentRunnerError, SandboxUnavailable, SessionClosed, first_line
from agent_runner.images import Checklist
from agent_runner.images.check import runner_item
from agent_runner.output import OutputCollector
from agent_runner.results import Stream

logger = logging.getLogger("agent_runner")


class DockerBackend:
    """Creates, pools, and removes sandbox containers for one set of settings."""

    name = "docker"
    supports_requirements = True
    """Sessions may ask for custom requirements (``ShellSpec.requirements``): see :mod:`.images`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = Engine(cleanup=settings.cleanup)
        self.images = DockerImages(self.engine, settings)
        self._owner = Owner.current()
        self._swept = False
        self._pools: dict[str | None, list[Sandbox]] = {}
        self._filling: dict[str | None, asyncio.Task[None]] = {}
        self._slow_path_noted = False
        self._closed = False

    async def api(self) -> Any:
        """The engine's client; the first connection also sweeps away orphaned sandboxes."""
        api = await self.engine.api()
        if not self._swept:
            self._swept = True
            self.engine.spawn(prune_orphans(self.engine))
        return api

    async def ensure_image(self) -> str:
        """The image sandboxes start from, made present (see :mod:`agent_runner.images`)."""
        await self.api()
        return (await self.images.resolve()).image

    # -- shells -------------------------------------------------------------------------

    async def open_shell(self, spec: ShellSpec) -> ExecutorShell | ExecShell:
        if self._closed:
            raise SessionClosed("the Docker backend is closed")
        workspace = self._workspace(spec.cwd)
        sandbox, image = await self._take(spec, workspace)
        if not sandbox.has_executor:
            return self._slow_shell(sandbox, spec, image)
        try:
            if spec.env or spec.unset:
                request = {"op": "env", "set": dict(spec.env), "unset": sorted(spec.unset)}
                await sandbox.channel.send(request)
            if self.settings.sandbox.workspace == "copy" and workspace is not None:
                await self._copy_in(sandbox, workspace)
        except BaseException:
            self.engine.discard(sandbox)
            raise
        return ExecutorShell(
            sandbox.channel,
            sandbox.container_id[:12],
            ShellState(WORKSPACE, {}),
            give_up=lambda: self.engine.discard(sandbox, broken=True),
            release=lambda: self.engine.discard(sandbox),
        )

    async def _take(self, spec: ShellSpec, workspace: Path | None) -> tuple[Sandbox, str]:
        """A started sandbox for a new session, and its image: on the session's layer when it
        has requirements (never from the pool, whose sandboxes run the base image), else from
        the warm pool when one waits there."""
        image = await self.ensure_image()
        if spec.requirements is not None:
            image = (await self.images.layer(spec.requirements)).image
            return await self._start_whole(spec.execution_id, workspace, image, pooled=False), image
        key = self._pool_key(workspace)
        pool = self._pools.get(key)
        sandbox = pool.pop() if pool else None
        if sandbox is None:
            sandbox = await self._start_whole(spec.execution_id, workspace, image, pooled=False)
        self._refill(key, workspace)
        return sandbox, image

    def _slow_shell(self, sandbox: Sandbox, spec: ShellSpec, image: str) -> ExecShell:
        if self.settings.sandbox.workspace == "copy":
            self.engine.discard(sandbox)
            raise SandboxUnavailable(
                f"image {image} has no python3, which the copy workspace "
                "needs; use workspace bind or none, or an image with python3"
            )
        if not self._slow_path_noted:
            self._slow_path_noted = True
            logger.warning(
                "image %s has no python3: each command runs through its own docker exec "
                "(tens of ms each instead of a few); add python3 to the image for the fast path",
                image,
            )
        return ExecShell(self.engine, sandbox, spec.env)

    @property
    def pool_level(self) -> int:
        """Started sandboxes waiting in the warm pool, all workspaces together."""
        return sum(len(pool) for pool in self._pools.values())

    async def warm(self, cwd: str | None) -> None:
        """Start filling the warm pool for ``cwd``'s workspace (returns at once)."""
        if self.settings.sandbox.pool_size:
            await self.ensure_image()
            workspace = self._workspace(cwd)
            self._refill(self._pool_key(workspace), workspace)

    def _workspace(self, cwd: str | None) -> Path | None:
        if self.settings.sandbox.workspace == "none":
            return None
        return Path(cwd or os.getcwd()).resolve()

    def _pool_key(self, workspace: Path | None) -> str | None:
        return str(workspace) if self.settings.sandbox.workspace == "bind" and workspace else None

    def _refill(self, key: str | None, workspace: Path | None) -> None:
        wanted = self.settings.sandbox.pool_size
        running = self._filling.get(key)
        if not wanted or self._closed or (running is not None and not running.done()):
            return

        async def fill() -> None:
            pool = self._pools.setdefault(key, [])
            image = await self.ensure_image()
            while not self._closed and len(pool) < wanted:
                sandbox = await self._start_whole("pool", workspace, image, pooled=True)
                if self._closed:
                    self.engine.discard(sandbox)
                    return
                pool.append(sandbox)

        self._filling[key] = self.engine.spawn(fill())

    async def _start_whole(
        self, execution_id: str, workspace: Path | None, image: str, *, pooled: bool
    ) -> Sandbox:
        """Start a sandbox even if the caller is cancelled meanwhile, then remove it.

        An engine call abandoned half-way would leave a container nobody knows the id of.
        """
        task = asyncio.ensure_future(self._start(execution_id, workspace, image, pooled=pooled))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            with suppress(Exception):
                self.engine.discard(await task)
            raise

    async def _start(
        self, execution_id: str, workspace: Path | None, image: str, *, pooled: bool
    ) -> Sandbox:
        api = await self.api()
        plan = plan_container(
            self.settings,
            image=image,
            execution_id=execution_id,
            workspace=workspace,
            owner=self._owner,
            pooled=pooled,
        )
        name = f"stigmer-{execution_id}-{secrets.token_hex(3)}"
        host_config = api.create_host_config(**plan.host)
        errors = self.engine.errors
        try:
            created = await self.engine.call(
                api.create_container, **plan.create, host_config=host_config, name=name
            )
        except errors.APIError as error:
            raise SandboxUnavailable(f"could not create a sandbox: {first_line(error)}") from None
        container_id: str = created["Id"]
        try:
            channel = await self._attach(container_id)
            await self.engine.call(api.start, container_id)
            has_executor = await self._handshake(channel, image)
        except BaseException as error:
            self.engine.remove_later(container_id)
            if isinstance(error, errors.APIError):
                raise SandboxUnavailable(
                    f"could not start a sandbox: {first_line(error)}"
                ) from None
            raise
        return Sandbox(container_id, channel, plan.uid, plan.gid, has_executor)

    async def _attach(self, container_id: str) -> ExecutorChannel:
        path = f"/containers/{container_id}/attach?stream=1&stdin=1&stdout=1&stderr=1"
        channel = ExecutorChannel()
        channel.attach(await self.engine.open_stream(path, None, channel))
        return channel

    async def _handshake(self, channel: ExecutorChannel, image: str) -> bool:
        """Whether the executor runs (else the image lacks python3 and a sleeper holds on)."""
        try:
            opening = await asyncio.wait_for(channel.opening(), 60)
        except (EOFError, TimeoutError):
            detail = channel.last_diagnostic()
            raise SandboxUnavailable(
                f"sandbox from {image} did not start its executor"
                + (f": {detail}" if detail else "")
            ) from None
        if opening == NO_BASH:
            raise SandboxUnavailable(f"image {image} has no bash; sandbox images need bash")
        if opening == NO_PYTHON:
            return False
        version = (channel.hello or {}).get("version")
        if version != PROTOCOL_VERSION:
            raise SandboxUnavailable(
                f"the executor in {image} speaks protocol {version}, this runner "
                f"{PROTOCOL_VERSION}: its python3 runs a different executor"
            )
        return True

    async def _copy_in(self, sandbox: Sandbox, workspace: Path) -> None:
        """Copy the workspace into the sandbox (strategy ``copy``: the host is never written).

        The executor unpacks it as the sandbox user, so the copy belongs to that user.
        """

        def archive() -> IO[bytes]:
            spool = tempfile.TemporaryFile()  # noqa: SIM115 - the caller closes it
            with tarfile.open(fileobj=spool, mode="w") as tar:
                tar.add(workspace, arcname=".")
            spool.seek(0)
            return spool

        spool = await self.engine.call(archive)
        channel = sandbox.channel
        number = channel.new_id()
        report = Report()
        channel.register(number, report)
        try:
            size = spool.seek(0, io.SEEK_END)
            spool.seek(0)
            await channel.send({"op": "put", "id": number, "path": WORKSPACE, "size": size})
            while chunk := await self.engine.call(spool.read, 1 << 20):
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

    # -- inventory and removal ------------------------------------------------------------

    async def check_image(self, image: str, tier: str | None = None) -> Checklist:
        """``agent-runner image check``: the contract's items (:mod:`.probe`), then one real
        command in a sandbox of ``image``, the way a session would run it."""
        found, tier, items = await contract(self.engine, self.settings, image, tier)
        checked = DockerBackend(probe_settings(self.settings, image))
        code: int | None = None
        fast = False
        output = OutputCollector(4096)
        try:
            shell = await checked.open_shell(ShellSpec("image-check", checked.settings))
            fast = isinstance(shell, ExecutorShell)
            try:
                code = (await shell.run(CommandRequest("echo stigmer-check", 60), output)).exit_code
            finally:
                await shell.close()
        except AgentRunnerError as error:  # the checklist reports it
            detail = error.message
        else:
            detail = output.text(Stream.STDERR).strip() or f"exit status {code}"
        finally:
            await output.close()
            await checked.close()
        items.append(runner_item(code, detail, fast))
        return Checklist(image, found["Id"], int(found.get("Size") or 0), tier, tuple(items))

    async def sandboxes(self) -> list[SandboxInfo]:
        return await list_sandboxes(self.engine)

    async def prune(self, *, everything: bool = False) -> list[SandboxInfo]:
        self._swept = True
        return await prune_orphans(self.engine, everything=everything)

    async def close(self) -> None:
        """Drain the pool and wait until every container this backend made is gone."""
        self._closed = True
        for task in list(self._filling.values()):
            task.cancel()
        await asyncio.gather(*self._filling.values(), return_exceptions=True)
        for pool in self._pools.values():
            for sandbox in pool:
                self.engine.discard(sandbox)
        self._pools.clear()
        await self.engine.close()
