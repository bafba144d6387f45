"""``agent-runner image check``: the contract's questions, asked of a container started the
way this backend starts sandboxes.

The container is planned by :func:`.spec.plan_container` (read-only root, no
capabilities, tmpfs ``/workspace``, the owner labels), with an arbitrary non-root uid that
no image defines and ``sleep infinity`` as its main process, so an image passes only if
the runner could really use it. The questions and the verdicts are
:mod:`agent_runner.images.check`'s; the container is removed whatever the answers.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from agent_runner.backends.docker.engine import Engine
from agent_runner.backends.docker.spec import plan_container
from agent_runner.backends.owner import Owner
from agent_runner.config import Settings
from agent_runner.errors import ImageNotFound, SandboxUnavailable, first_line
from agent_runner.images.check import Item, contract_items
from agent_runner.images.inventory import TIER_LABEL

CHECK_UID = 4242
"""Not root, not the images' usual 1000: the runner uses the workspace owner's uid, any uid."""


def probe_settings(settings: Settings, image: str) -> Settings:
    """The settings a check runs under: the image, no workspace, no network, no pull."""
    sandbox = settings.sandbox.model_copy(
        update={"workspace": "none", "network": "none", "user": f"{CHECK_UID}:{CHECK_UID}"}
    )
    update = {"sandbox_image": image, "auto_pull": False, "sandbox": sandbox, "cleanup": True}
    return settings.model_copy(update=update)


class ContainerProbe:
    """A started check container (implements :class:`agent_runner.images.check.Probe`)."""

    def __init__(self, api: Any, errors: Any, container_id: str, uid: int) -> None:
        self.api = api
        self.errors = errors
        self.container_id = container_id
        self.uid = uid

    def running(self) -> bool:
        try:
            state = self.api.inspect_container(self.container_id)["State"]
        except self.errors.APIError:
            return False
        return bool(state.get("Running"))

    def run(self, argv: list[str]) -> tuple[int, str]:
        try:
            created = self.api.exec_create(
                self.container_id, argv, user=f"{self.uid}:{self.uid}", workdir="/workspace"
            )
            output = self.api.exec_start(created["Id"])
            code = self.api.exec_inspect(created["Id"])["ExitCode"]
        except self.errors.APIError as error:
            return 127, first_line(error)
        text = output.decode("utf-8", "replace") if isinstance(output, bytes) else str(output)
        return int(code if code is not None else 127), text


async def contract(
    engine: Engine, settings: Settings, image: str, tier: str | None
) -> tuple[dict[str, Any], str | None, list[Item]]:
    """The image's inspect data, the tier checked (``tier``, else the image's
    ``stigmer.sandbox.tier`` label) and the contract's items for it."""
    api = await engine.api()
    errors = engine.errors
    try:
        found: dict[str, Any] = await engine.call(api.inspect_image, image)
    except errors.ImageNotFound:
        raise ImageNotFound(
            f"{image} is not present: `agent-runner image pull {image}` or build it first"
        ) from None
    tier = tier or ((found.get("Config") or {}).get("Labels") or {}).get(TIER_LABEL)
    checked = probe_settings(settings, image)
    plan = plan_container(
        checked,
        image=image,
        execution_id="image-check",
        workspace=None,
        owner=Owner.current(),
        pooled=False,
    )
    create = {**plan.create, "command": ["sleep", "infinity"], "stdin_open": False}
    host_config = api.create_host_config(**plan.host)
    try:
        created = await engine.call(api.create_container, **create, host_config=host_config)
    except errors.APIError as error:
        raise SandboxUnavailable(
            f"cannot create a container of {image}: {first_line(error)}"
        ) from None
    container_id: str = created["Id"]
    try:
        with suppress(errors.APIError):  # no `sleep`: the probe finds it not running
            await engine.call(api.start, container_id)
        probe = ContainerProbe(api, errors, container_id, CHECK_UID)
        items = await engine.call(contract_items, probe, tier)
    finally:
        with suppress(Exception):
            await engine.remove(container_id)
    return found, tier, items
