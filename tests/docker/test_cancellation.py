"""Cancelling a streaming command at any moment leaves its sandbox working.

A cancellation can land anywhere in the stream: between the engine's 8-byte header and its
payload, inside an executor frame, in a pause. Each round here cancels a command that
streams output after a random delay, then runs another command in the same session, which
must work. On the engine's unix socket, and through a loopback TCP proxy that cuts the
stream into 4 KiB and into 1-byte pieces (``DOCKER_HOST=tcp://...``), the way a slow network
path delivers it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from collections.abc import Iterator

import pytest

from agent_runner import Runner, Settings
from tests.conftest import sandbox_workspace

pytestmark = pytest.mark.docker

ROUNDS = 1000
FAST_STREAM = "yes abcdefghijklmnopqrstuvwxyz | head -c 3000000000"
SLOW_STREAM = "for i in $(seq 1 1000000); do echo line-$i; sleep 0.001; done"
"""Through 1-byte pieces, what is in flight when a command is cancelled must drain byte by
byte: a stream of about 10 KB/s keeps that to a few kilobytes."""


class ChunkingProxy:
    """127.0.0.1:PORT -> the engine's unix socket, the engine's answers cut into pieces."""

    def __init__(self, piece: int, socket_path: str = "/var/run/docker.sock") -> None:
        self.piece = piece
        self.socket_path = socket_path
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.port = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.server: asyncio.AbstractServer | None = None

    def __enter__(self) -> ChunkingProxy:
        self.thread.start()
        assert self.ready.wait(30)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._connection, "127.0.0.1", 0)
        )
        self.port = self.server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()
        self.server.close()
        for task in asyncio.all_tasks(self.loop):
            task.cancel()
        self.loop.run_until_complete(asyncio.sleep(0))
        self.loop.close()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        engine_reader, engine_writer = await asyncio.open_unix_connection(self.socket_path)
        await asyncio.gather(
            self._pipe(reader, engine_writer, None),
            self._pipe(engine_reader, writer, self.piece),
            return_exceptions=True,
        )
        for end in (writer, engine_writer):
            end.close()

    @staticmethod
    async def _pipe(
        source: asyncio.StreamReader, target: asyncio.StreamWriter, piece: int | None
    ) -> None:
        try:
            while data := await source.read(65536):
                step = piece or len(data)
                for start in range(0, len(data), step):
                    target.write(data[start : start + step])
                    await target.drain()
            if target.can_write_eof():
                target.write_eof()
        except (ConnectionError, OSError):
            pass


@pytest.fixture
def workspace(tmp_path):
    return sandbox_workspace(tmp_path / "ws")


@contextlib.contextmanager
def through(monkeypatch: pytest.MonkeyPatch, piece: int | None) -> Iterator[None]:
    if piece is None:
        yield
        return
    with ChunkingProxy(piece) as proxy:
        monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{proxy.port}")
        yield


@pytest.mark.parametrize(
    ("piece", "command"),
    [(None, FAST_STREAM), (4096, FAST_STREAM), (1, SLOW_STREAM)],
    ids=["unix-socket", "tcp-4KiB-pieces", "tcp-1-byte-pieces"],
)
async def test_random_cancellations_never_break_the_sandbox(
    sandbox_image, workspace, monkeypatch, piece, command
):
    rng = random.Random(f"cancel-{piece}")
    settings = Settings.defaults(mode="sandbox", sandbox_image=sandbox_image, auto_pull=False)
    with through(monkeypatch, piece):
        async with Runner(settings) as runner, runner.session(cwd=workspace) as session:
            for round_number in range(ROUNDS):
                task = asyncio.ensure_future(session.run(command))
                await asyncio.sleep(rng.uniform(0, 0.03))
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                after = await session.run(f"echo ok-{round_number}")
                assert after.stdout == f"ok-{round_number}\n", f"round {round_number}"
