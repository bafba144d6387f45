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
import logging
import os
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

from agent_runner.backends.base import CommandRequest, SandboxInfo, ShellSpec
from agent_runner.backends.channel import ExecutorChannel
from agent_runner.backends.docker.engine import Engine, ImageGone
from agent_runner.backends.docker.exec_shell import ExecShell
from agent_runner.backends.docker.images import DockerImages
from agent_runner.backends.docker.inventory import list_sandboxes, prune_orphans
from agent_runner.backends.docker.one_shot import OneShotShell
from agent_runner.backends.docker.probe import contract, probe_settings
from agent_runner.backends.docker.sandbox import Sandbox
from agent_runner.backends.docker.spec import (
    NO_BASH,
    NO_PYTHON,
    WORKSPACE,
    ContainerPlan,
    plan_container,
)
from agent_runner.backends.docker.stream import engine_url_from_environment
from agent_runner.backends.executor import PROTOCOL_VERSION
from agent_runner.backends.executor_shell import ExecutorShell, state_at_start
from agent_runner.backends.owner import Owner
from agent_runner.backends.uploads import copy_directory
from agent_runner.config import Settings
from agent_runner.errors import AgentRunnerError, SandboxUnavailable, SessionClosed, first_line
from agent_runner.images import Checklist
from agent_runner.images.check import runner_item
from agent_runner.output import OutputCollector
from agent_runner.requirements import Requirements
from agent_runner.results import Stream

logger = logging.getLogger("agent_runner")
_SWEPT: set[str] = set()
"""Engines whose orphans this process has swept."""


class DockerBackend:
    """Creates, pools, and removes sandbox containers for one set of settings."""

    name = "docker"
    supports_requirements = True
    """Sessions may ask for custom requirements (``ShellSpec.requirements``): see :mod:`.images`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = Engine(cleanup=settings.cleanup)
        self._owner = Owner.current()
        self._swept = False
        self.images = DockerImages(self.engine, settings)
        self._pools: dict[str | None, list[Sandbox]] = {}
        self._filling: dict[str | None, asyncio.Task[None]] = {}
        self._slow_path_noted = False
        self._closed = False

    async def api(self) -> Any:
        """The engine's client; the process's first connection to an engine also sweeps away
        the sandboxes of runners that died (they only appear when one does, so once per
        process is enough, and a one-off command does not pay a listing each time)."""
        api = await self.engine.api()
        if not self._swept:
            self._swept = True
            url = engine_url_from_environment()
            if url not in _SWEPT:
                _SWEPT.add(url)
                self.engine.spawn(prune_orphans(self.engine))
        return api

    async def ensure_image(self) -> str:
        """The image sandboxes start from, made present (see :mod:`agent_runner.images`)."""
        await self.api()
        return (await self.images.resolve()).image

    async def image_for(self, requirements: Requirements | None) -> str:
        """The image a session starts on: its requirements' layer, else the sandbox image."""
        if requirements is None:
            return await self.ensure_image()
        return (await self.images.layer(requirements)).image

    async def create(
        self,
        plan_for: Callable[[str], ContainerPlan],
        execution_id: str,
        requirements: Requirements | None = None,
    ) -> tuple[ContainerPlan, str]:
        """Create a container on the session's image (the plan is made for it); resolve the
        image again, once, if it left the engine since it was resolved."""
        plan = plan_for(await self.image_for(requirements))
        try:
            return plan, await self.engine.create(plan, execution_id)
        except ImageGone:
            self.images.forget()
            plan = plan_for(await self.image_for(requirements))
            return plan, await self.engine.create(plan, execution_id)

    # -- shells -------------------------------------------------------------------------

    async def open_shell(self, spec: ShellSpec) -> ExecutorShell | ExecShell | OneShotShell:
        if self._closed:
            raise SessionClosed("the Docker backend is closed")
        await self.image_for(spec.requirements)  # a bad requirements file fails before a start
        workspace = self._workspace(spec.cwd)
        key = self._pool_key(workspace)
        pool = self._pools.get(key) if spec.requirements is None else None
        if not spec.persistent and not pool and self.settings.sandbox.workspace != "copy":
            return self._one_shot(spec, workspace)
        sandbox = pool.pop() if pool else None
        if sandbox is None:
            sandbox = await self._start_whole(
                spec.execution_id, workspace, spec.requirements, pooled=False
            )
        self._refill(key, workspace)
        if not sandbox.has_executor:
            return await self._slow_shell(sandbox, spec)
        changes: dict[str, str | None] = {**spec.env, **dict.fromkeys(spec.unset)}
        try:
            if changes:
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
            state_at_start(sandbox.channel, WORKSPACE, changes),
            give_up=lambda: self.engine.discard(sandbox, broken=True),
            release=lambda: self.engine.discard(sandbox),
        )

    def _one_shot(self, spec: ShellSpec, workspace: Path | None) -> OneShotShell:
        """A one-off command without a warm sandbox at hand: its container runs it alone."""

        async def create(argv: list[str], env: dict[str, str], cwd: str, stdin: bool) -> str:
            _, container_id = await self.create(
                lambda image: plan_container(
                    self.settings,
                    image=image,
                    execution_id=spec.execution_id,
                    workspace=workspace,
                    owner=self._owner,
                    pooled=False,
                    command=argv,
                    env=env,
                    working_dir=cwd,
                    stdin=stdin,
                ),
                spec.execution_id,
                spec.requirements,
            )
            return container_id

        return OneShotShell(self.engine, create, dict(spec.env))

    async def _slow_shell(self, sandbox: Sandbox, spec: ShellSpec) -> ExecShell:
        if self.settings.sandbox.workspace == "copy":
            self.engine.discard(sandbox)
            raise SandboxUnavailable(
                f"image {sandbox.image} has no python3, which the copy workspace "
                "needs; use workspace bind or none, or an image with python3"
            )
        if not self._slow_path_noted:
            self._slow_path_noted = True
            logger.warning(
                "image %s has no python3: each command runs through its own docker exec "
                "(tens of ms each instead of a few); add python3 to the image for the fast path",
                sandbox.image,
            )
        # The container's own variables (the image's, ours) are where its shell starts, not
        # something a command set: an AUTO session must not take them for a command's doing.
        details = await self.engine.call((await self.api()).inspect_container, sandbox.container_id)
        image_env = dict(
            item.partition("=")[::2] for item in details.get("Config", {}).get("Env") or []
        )
        return ExecShell(self.engine, sandbox, {**image_env, **spec.env})

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
            while not self._closed and len(pool) < wanted:
                sandbox = await self._start_whole("pool", workspace, None, pooled=True)
                if self._closed:
                    self.engine.discard(sandbox)
                    return
                pool.append(sandbox)

        self._filling[key] = self.engine.spawn(fill())

    async def _start_whole(
        self,
        execution_id: str,
        workspace: Path | None,
        requirements: Requirements | None,
        *,
        pooled: bool,
    ) -> Sandbox:
        """Start a sandbox even if the caller is cancelled meanwhile, then remove it.

        An engine call abandoned half-way would leave a container nobody knows the id of.
        """
        task = asyncio.ensure_future(
            self._start(execution_id, workspace, requirements, pooled=pooled)
        )
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            with suppress(Exception):
                self.engine.discard(await task)
            raise

    async def _start(
        self,
        execution_id: str,
        workspace: Path | None,
        requirements: Requirements | None,
        *,
        pooled: bool,
    ) -> Sandbox:
        api = await self.api()
        errors = self.engine.errors
        plan, container_id = await self.create(
            lambda image: plan_container(
                self.settings,
                image=image,
                execution_id=execution_id,
                workspace=workspace,
                owner=self._owner,
                pooled=pooled,
            ),
            execution_id,
            requirements,
        )
        image = plan.create["image"]
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
        return Sandbox(container_id, image, channel, plan.uid, plan.gid, has_executor)

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
        await copy_directory(sandbox.channel, workspace, WORKSPACE)

    # -- inventory and removal ------------------------------------------------------------

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
