"""The Docker container behind each emulated sandbox: what a Daytona runner does.

A runner creates one container per sandbox from the snapshot's image, with the sandbox's
env plus ``DAYTONA_SANDBOX_ID``/``_SNAPSHOT``/``_USER``, hostname = sandbox id and the
memory/CPU of the snapshot (``apps/runner/pkg/docker/container_configs.go``), and runs its
daemon inside. Here the container's main process is a sleeper under ``--init`` (so stop is
prompt) and every daemon action is a ``docker exec`` as the sandbox's user. The emulator's
daemon-side files (session logs, exit codes, FIFOs) live in a host directory bind-mounted
at :data:`MOUNT`, so following a log costs no exec.

Every container carries ``stigmer.test-fake=daytona``, the emulator instance's id and its
owner (pid, host, process start time). The instance removes all of its containers when it
stops; containers whose owner died without stopping (SIGKILL, SIGTERM) are removed by the
next emulator that starts on the host.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import socket
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.fakes.daytona.engine import Engine, EngineError, ExecStream

LABEL = "stigmer.test-fake"
LABEL_VALUE = "daytona"
INSTANCE_LABEL = "stigmer.test-fake.instance"
SANDBOX_LABEL = "stigmer.test-fake.sandbox"
OWNER_PID_LABEL = "stigmer.test-fake.owner-pid"
OWNER_HOST_LABEL = "stigmer.test-fake.owner-host"
OWNER_STARTED_LABEL = "stigmer.test-fake.owner-started"
MOUNT = "/.daytona-emulator"
FALLBACK_USER = "daytona"
FALLBACK_UID = 1000

_SLEEPER = "trap 'exit 0' TERM INT; while :; do sleep 86400 & wait $!; done"
_ROOT_USERS = {"", "root", "0", "0:0"}

# Runs as root once the container is up: make sure the sandbox user has a passwd entry
# (real snapshots ship a ``daytona`` user; bare images do not), then print that entry and
# the shell the daemon would pick (zsh, else bash, else $SHELL, else sh: GetShell()).
_IDENTITY_SCRIPT = r"""
spec=$1 create=$2
uid=${spec%%:*}
if [ "$create" = yes ] && ! awk -F: -v u="$uid" '$3==u {f=1} END {exit !f}' /etc/passwd; then
    sh_path=/bin/sh; [ -x /bin/bash ] && sh_path=/bin/bash
    echo "daytona:x:$uid:$uid:daytona:/home/daytona:$sh_path" >> /etc/passwd
    awk -F: -v g="$uid" '$3==g {f=1} END {exit !f}' /etc/group || echo "daytona:x:$uid:" >> /etc/group
fi
entry=$(awk -F: -v u="$uid" '$1==u || $3==u {print; exit}' /etc/passwd)
[ -n "$entry" ] || entry="$uid:x:$uid:${spec#*:}::/:/bin/sh"
home=$(printf '%s' "$entry" | cut -d: -f6)
owner=$(printf '%s' "$entry" | cut -d: -f3,4)
[ -d "$home" ] || { mkdir -p "$home" && chown "$owner" "$home"; }
printf '%s\n' "$entry"
shells=$(grep '^[^#]' /etc/shells 2>/dev/null)
for candidate in /usr/bin/zsh /bin/zsh /usr/bin/bash /bin/bash; do
    case "$shells" in *"$candidate"*) echo "$candidate"; exit 0 ;; esac
done
echo "${SHELL:-sh}"
"""


def _start_time(pid: int) -> str:
    """The kernel's start time of ``pid`` (``""`` when gone): tells a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def owner_labels() -> dict[str, str]:
    """Who made a container: this process, on this host, started at this time."""
    pid = os.getpid()
    return {
        OWNER_PID_LABEL: str(pid),
        OWNER_HOST_LABEL: socket.gethostname(),
        OWNER_STARTED_LABEL: _start_time(pid),
    }


def orphaned(labels: Mapping[str, str]) -> bool:
    """True when the process that made the container is gone (on this host)."""
    if labels.get(OWNER_HOST_LABEL) != socket.gethostname():
        return False
    try:
        pid = int(labels.get(OWNER_PID_LABEL, ""))
    except ValueError:
        return False
    return _start_time(pid) != labels.get(OWNER_STARTED_LABEL)


class ImageMissing(Exception):
    """The snapshot's image is not in the local engine."""


@dataclass(frozen=True)
class Identity:
    """Who the sandbox's daemon runs as, and where it starts."""

    name: str
    uid: int
    gid: int
    home: str
    workdir: str
    shell: str

    @property
    def spec(self) -> str:
        return f"{self.uid}:{self.gid}"


@dataclass
class SandboxContainer:
    """One sandbox's container and its share of the host."""

    id: str
    host_dir: Path
    identity: Identity


@dataclass(frozen=True)
class ImageInfo:
    user: str
    workdir: str


class Containers:
    """Creates, runs and removes the containers of one emulator instance."""

    def __init__(self, engine: Engine, instance_id: str, state_root: Path) -> None:
        self.engine = engine
        self.instance_id = instance_id
        self.state_root = state_root

    @property
    def labels(self) -> dict[str, str]:
        return {LABEL: LABEL_VALUE, INSTANCE_LABEL: self.instance_id}

    async def image_info(self, image: str) -> ImageInfo:
        try:
            reply = await self.engine.call("GET", f"/images/{Engine.quoted(image)}/json")
        except EngineError as error:
            if error.status == 404:
                raise ImageMissing(image) from None
            raise
        config = reply.get("Config") or {}
        return ImageInfo(user=config.get("User") or "", workdir=config.get("WorkingDir") or "")

    async def build(self, dockerfile: str, log: list[str]) -> str:
        """Build ``dockerfile`` (no context) into a local image; its tag. Progress -> ``log``."""
        tag = f"daytona-emu-build:{hashlib.sha256(dockerfile.encode()).hexdigest()[:16]}"
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            data = dockerfile.encode()
            entry = tarfile.TarInfo("Dockerfile")
            entry.size = len(data)
            archive.addfile(entry, io.BytesIO(data))
        async for line in self.engine.build(buffer.getvalue(), tag):
            if "error" in line:
                log.append(str(line["error"]))
                raise EngineError(500, str(line["error"]).strip())
            if line.get("stream"):
                log.append(str(line["stream"]))
        return tag

    async def create(
        self,
        sandbox_id: str,
        image: str,
        *,
        env: dict[str, str],
        memory_gib: int,
        cpu: int,
        user: str | None,
        snapshot: str,
    ) -> SandboxContainer:
        """Create and start the container, then settle who its daemon runs as."""
        info = await self.image_info(image)
        wanted = user or ("" if info.user in _ROOT_USERS else info.user)
        create_user = not wanted
        spec = wanted or f"{FALLBACK_UID}:{FALLBACK_UID}"
        host_dir = self.state_root / sandbox_id
        host_dir.mkdir(parents=True, exist_ok=True)
        cpus = max(1, min(cpu, os.cpu_count() or 1))
        variables = {
            "DAYTONA_SANDBOX_ID": sandbox_id,
            "DAYTONA_SANDBOX_SNAPSHOT": snapshot,
            "DAYTONA_SANDBOX_USER": wanted or FALLBACK_USER,
            **env,
        }
        body = {
            "Image": image,
            "Hostname": sandbox_id[:63],
            "User": spec,
            "Entrypoint": ["/bin/sh", "-c", _SLEEPER],
            "Cmd": [],
            "Env": [f"{key}={value}" for key, value in variables.items()],
            "Labels": {**self.labels, SANDBOX_LABEL: sandbox_id, **owner_labels()},
            "HostConfig": {
                "Init": True,
                "Memory": memory_gib * 1024**3,
                "MemorySwap": memory_gib * 1024**3,
                "NanoCpus": cpus * 1_000_000_000,
                "Binds": [f"{host_dir}:{MOUNT}"],
            },
        }
        reply = await self.engine.call(
            "POST", "/containers/create", params={"name": f"daytona-emu-{sandbox_id}"}, body=body
        )
        container_id = str(reply["Id"])
        await self.start(container_id)
        code, out, err = await self.run(
            container_id,
            ["/bin/sh", "-c", _IDENTITY_SCRIPT, "identity", spec, "yes" if create_user else "no"],
            user="root",
        )
        lines = out.decode(errors="replace").splitlines()
        if code != 0 or len(lines) < 2:
            raise EngineError(500, f"could not settle the sandbox user: {err.decode()[-300:]}")
        fields = lines[0].split(":")
        identity = Identity(
            name=fields[0],
            uid=int(fields[2]),
            gid=int(fields[3]),
            home=fields[5] or "/",
            workdir=info.workdir or fields[5] or "/",
            shell=lines[1].strip() or "sh",
        )
        self.share(host_dir, identity, directory=True)
        return SandboxContainer(id=container_id, host_dir=host_dir, identity=identity)

    async def start(self, container_id: str) -> None:
        await self.engine.call("POST", f"/containers/{container_id}/start")

    async def stop(self, container_id: str, *, force: bool = False) -> None:
        if force:
            try:
                await self.engine.call("POST", f"/containers/{container_id}/kill")
            except EngineError as error:
                if error.status != 409:  # not running
                    raise
            return
        await self.engine.call("POST", f"/containers/{container_id}/stop", params={"t": "10"})

    async def remove(self, container_id: str) -> None:
        try:
            await self.engine.call(
                "DELETE", f"/containers/{container_id}", params={"force": "true", "v": "true"}
            )
        except EngineError as error:
            if error.status != 404:
                raise

    def forget(self, container: SandboxContainer) -> None:
        shutil.rmtree(container.host_dir, ignore_errors=True)

    async def state(self, container_id: str) -> dict[str, object] | None:
        """The engine's ``State`` of the container, ``None`` when it is gone."""
        try:
            reply = await self.engine.call("GET", f"/containers/{container_id}/json")
        except EngineError as error:
            if error.status == 404:
                return None
            raise
        return dict(reply.get("State") or {})

    async def open(
        self,
        container_id: str,
        command: list[str],
        *,
        user: str,
        workdir: str = "",
        env: dict[str, str] | None = None,
        stdin: bool = True,
    ) -> tuple[str, ExecStream]:
        """Start a process in the container and return its exec id and stream."""
        exec_id = await self.engine.exec_create(
            container_id,
            command,
            user=user,
            workdir=workdir,
            env=[f"{key}={value}" for key, value in (env or {}).items()],
            stdin=stdin,
        )
        return exec_id, await self.engine.exec_start(exec_id)

    async def run(
        self,
        container_id: str,
        command: list[str],
        *,
        user: str,
        workdir: str = "",
        stdin: bytes | None = None,
    ) -> tuple[int, bytes, bytes]:
        """Run a process to its end: (exit code, stdout, stderr)."""
        exec_id, stream = await self.open(
            container_id, command, user=user, workdir=workdir, stdin=stdin is not None
        )
        try:
            if stdin is not None:
                await stream.write(stdin)
                stream.close_stdin()
            out, err = await stream.read_all()
        finally:
            stream.close()
        code = await self.engine.exec_exit_code(exec_id)
        return (-1 if code is None else code), out, err

    @staticmethod
    def share(path: Path, identity: Identity, *, directory: bool = False) -> None:
        """Let the sandbox user use a file or directory the emulator made on the host."""
        if os.geteuid() == 0:
            os.chown(path, identity.uid, identity.gid)
        else:
            path.chmod(0o777 if directory else 0o666)
