"""What a sandbox container looks like: the secure defaults, in one pure function.

Kept apart from the engine calls so the defaults can be read (and tested) in one place:
non-root user, no capabilities, no privilege gain, limits on processes, memory and CPU,
read-only root filesystem with tmpfs ``/tmp`` and ``$HOME``, the workspace at
``/workspace``, no Docker socket, no devices, and labels that let a later runner find and
remove the container if this one dies.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent_runner.backends import executor
from agent_runner.backends.owner import SANDBOX_LABEL, Owner
from agent_runner.config import Settings
from agent_runner.config.sections import size_in_bytes
from agent_runner.errors import InvalidSetting, WorkingDirectoryMissing

LABEL = SANDBOX_LABEL
WORKSPACE = "/workspace"
HOME = "/home/sandbox"
CA_PATH = "/etc/stigmer/ca-bundle.crt"
STATE_FILE = "/tmp/.stigmer-executor-state"
FALLBACK_USER = (1000, 1000)
"""The image's ``sandbox`` user, used when the workspace and the runner both belong to root."""
CA_VARIABLES = (
    "SSL_CERT_FILE",
    "PIP_CERT",
    "REQUESTS_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
    "CURL_CA_BUNDLE",
    "GIT_SSL_CAINFO",
)
EXECUTOR_SOURCE = Path(executor.__file__).read_text(encoding="utf-8")
HOST_WORKSPACE_ROOT = "STIGMER_HOST_WORKSPACE_ROOT"
RUNNER_WORKSPACE_ROOT = "STIGMER_WORKSPACE_ROOT"

NO_BASH = b"stigmer-launcher: no bash"
NO_PYTHON = b"stigmer-launcher: no python3"
LAUNCHER = (
    f'command -v bash >/dev/null 2>&1 || {{ echo "{NO_BASH.decode()}"; exit 127; }}; '
    'command -v python3 >/dev/null 2>&1 && exec python3 -I -S -u -c "$1" "$2"; '
    f'echo "{NO_PYTHON.decode()}"; exec sleep infinity'
)
"""The container's main process: the executor when the image has python3, else a sleeper
(commands then fall back to one exec each). An image without bash cannot run commands."""


def sandbox_user(settings: Settings, workspace: Path | None) -> tuple[int, int]:
    """The sandbox runs as the workspace's owner, so the files it writes are theirs; never root."""
    configured = settings.sandbox.user
    if configured:  # validated by the settings: a numeric uid other than 0, maybe :gid
        uid, _, gid = configured.partition(":")
        return int(uid), int(gid or uid)
    if workspace is not None:
        stat = workspace.stat()
        if stat.st_uid != 0:
            return stat.st_uid, stat.st_gid
    if os.getuid() != 0:
        return os.getuid(), os.getgid()
    return FALLBACK_USER


def host_path(path: Path, environ: Mapping[str, str] | None = None) -> str:
    """The engine's view of ``path`` when the runner itself runs in a container.

    With the host's Docker socket mounted in, bind mounts are resolved on the host:
    ``STIGMER_HOST_WORKSPACE_ROOT`` is the host directory that appears in the runner at
    ``STIGMER_WORKSPACE_ROOT`` (default ``/workspace``).
    """
    env = os.environ if environ is None else environ
    host_root = env.get(HOST_WORKSPACE_ROOT)
    if not host_root:
        return str(path)
    runner_root = Path(env.get(RUNNER_WORKSPACE_ROOT) or "/workspace")
    try:
        relative = path.relative_to(runner_root)
    except ValueError:
        raise InvalidSetting(
            f"workspace {path} is not under {RUNNER_WORKSPACE_ROOT}={runner_root}, "
            f"so {HOST_WORKSPACE_ROOT} cannot map it to a host path"
        ) from None
    return str(Path(host_root) / relative)


@dataclass(frozen=True)
class ContainerPlan:
    """Arguments for docker-py's ``create_container`` and ``create_host_config``."""

    create: dict[str, Any]
    host: dict[str, Any]
    uid: int
    gid: int


def plan_container(
    settings: Settings,
    *,
    image: str,
    execution_id: str,
    workspace: Path | None,
    owner: Owner,
    pooled: bool,
    command: list[str] | None = None,
    env: Mapping[str, str] | None = None,
    working_dir: str = WORKSPACE,
    stdin: bool = True,
) -> ContainerPlan:
    """The container for one sandbox, with every default spelled out.

    Its main process is the executor, unless ``command`` is given (a one-off command run
    as the main process, with ``env`` on top, in ``working_dir``, stdin only if asked).
    """
    sandbox = settings.sandbox
    if sandbox.workspace != "none" and (workspace is None or not workspace.is_dir()):
        raise WorkingDirectoryMissing(
            f"workspace {workspace} does not exist or is not a directory; "
            "pass an existing --cwd or set execution.sandbox.workspace to none"
        )
    uid, gid = sandbox_user(settings, workspace if sandbox.workspace == "bind" else None)
    environment = {"HOME": HOME}
    for name in sandbox.env_passthrough:
        if name in os.environ:
            environment[name] = os.environ[name]
    if sandbox.ca_bundle is not None:
        environment.update(dict.fromkeys(CA_VARIABLES, CA_PATH))
    environment.update(env or {})
    labels = {**owner.labels(execution_id, image), "stigmer.pooled": "1" if pooled else "0"}
    executor = ["/bin/sh", "-c", LAUNCHER, "stigmer-launcher", EXECUTOR_SOURCE, STATE_FILE]
    create: dict[str, Any] = {
        "image": image,
        "command": command or executor,
        "user": f"{uid}:{gid}",
        "environment": environment,
        "labels": labels,
        "working_dir": working_dir,
        "stdin_open": stdin,  # docker-py adds StdinOnce: hanging up closes it
        "tty": False,
    }
    host = _host_config(settings, workspace, uid, gid)
    if command is not None:
        host["auto_remove"] = False  # its exit status is read after it ends, then it goes
    return ContainerPlan(create, host, uid, gid)


def _tmpfs_sizes(settings: Settings) -> tuple[int, int]:
    """Bytes for /tmp and $HOME each, and for an in-memory workspace. They are memory, so
    they count against the limit: /tmp and $HOME together stay under half of it, so that
    filling them is "No space left on device" rather than an OOM kill of everything."""
    memory = size_in_bytes(settings.sandbox.memory)
    tmp = size_in_bytes(settings.sandbox.tmp_size)
    if 4 * tmp > memory:
        raise InvalidSetting(
            f"execution.sandbox.tmp_size {settings.sandbox.tmp_size} is more than a quarter of "
            f"execution.sandbox.memory {settings.sandbox.memory}: /tmp and $HOME live in the "
            "sandbox's memory; lower tmp_size or raise memory"
        )
    return tmp, memory // 2


def _host_config(settings: Settings, workspace: Path | None, uid: int, gid: int) -> dict[str, Any]:
    sandbox = settings.sandbox
    binds: dict[str, dict[str, str]] = {}
    tmp, workspace_size = _tmpfs_sizes(settings)
    tmpfs = {
        "/tmp": f"rw,exec,nosuid,nodev,size={tmp},mode=1777",
        HOME: f"rw,exec,nosuid,nodev,size={tmp},uid={uid},gid={gid},mode=0700",
    }
    if sandbox.workspace == "bind" and workspace is not None:
        binds[host_path(workspace)] = {"bind": WORKSPACE, "mode": "rw"}
    else:
        tmpfs[WORKSPACE] = (
            f"rw,exec,nosuid,nodev,size={workspace_size},uid={uid},gid={gid},mode=0755"
        )
    if sandbox.ca_bundle is not None:
        if not sandbox.ca_bundle.is_file():
            raise InvalidSetting(f"execution.sandbox.ca_bundle {sandbox.ca_bundle} is not a file")
        binds[str(sandbox.ca_bundle.resolve())] = {"bind": CA_PATH, "mode": "ro"}
    return {
        "binds": binds,
        "tmpfs": tmpfs,
        "read_only": True,
        "init": True,
        "auto_remove": settings.cleanup,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "privileged": False,
        "pids_limit": sandbox.pids_limit,
        "mem_limit": sandbox.memory,
        "memswap_limit": sandbox.memory,
        "nano_cpus": int(sandbox.cpus * 1e9),
        "network_mode": sandbox.network,
        "ipc_mode": "private",
        # The executor's frames are the container's stdout: never store them in a log.
        "log_config": {"type": "none", "config": {}},
    }
