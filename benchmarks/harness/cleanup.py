"""Every container a run leaves behind, found and removed: by our run label (docker-py,
llm-sandbox, SWE-ReX), by epicbox's names, and by the labels our Docker backend sets. The
driver sweeps after each contender and when the run ends, errors and Ctrl-C included."""

from __future__ import annotations

import contextlib
import os
from typing import Any

from harness.config import LABEL, Config


def docker_client() -> Any:
    import docker

    return docker.from_env()


OURS_LABELS = ("stigmer.sandbox=1", f"stigmer.owner-pid={os.getpid()}")
"""Labels the Docker backend puts on the sandboxes this process starts."""


def sweep(cfg: Config) -> int:
    """Remove every container of this run that is still there; how many there were."""
    client = docker_client()
    leftovers = client.containers.list(all=True, filters={"label": f"{LABEL}={cfg.run_id}"})
    leftovers += [
        c
        for c in client.containers.list(all=True, filters={"name": "epicbox-"})
        if c.name.startswith("epicbox-") and c.attrs.get("Config", {}).get("Image") == cfg.image
    ]
    leftovers += client.containers.list(all=True, filters={"label": list(OURS_LABELS)})
    for container in leftovers:
        with contextlib.suppress(Exception):
            container.remove(force=True)
    return len(leftovers)
