"""SANDBOX on a Docker (or Podman) engine: one container per session, its executor attached.

``backend`` is where (image, create, pool, remove), ``shell`` and ``exec_shell`` are how
(commands over the executor stream; one exec per command for images without python3),
``spec`` is what a container looks like, ``inventory`` lists and prunes, ``engine`` and
``stream`` are the Engine API on asyncio.
"""

from agent_runner.backends.docker.backend import DockerBackend

__all__ = ["DockerBackend"]
