"""Behaviour every backend must show, written once (the fsspec way).

A backend's test module subclasses :class:`BackendContract` and supplies one fixture,
``settings``: the :class:`~agent_runner.Settings` that make ``mode`` run on that backend.
Nothing here knows which backend it talks to; each subclass names the mode and the
backend name its results must report.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from agent_runner import (
    ExecutionMode,
    ExecutionResult,
    OutputChunk,
    ProcessStatus,
    Runner,
    Settings,
    Stream,
)

TRICKY_COMMANDS = [
    "echo 'it'\"'\"'s'",
    'echo "$((6 * 7)) \\$HOME"',
    "printf '%s\\n' 'a  b' \"c\\td\"",
    "echo héllo wörld ✓ 日本語 🚀",
    "cat <<'EOF'\nline one\n  $NOT_EXPANDED\nEOF",
    "x='a;b|c&d'; echo \"$x\"",
    "echo `echo back` $(echo tick)",
    "false || echo recovered",
]
EXPECTED = [
    "it's",
    "42 $HOME",
    "a  b\nc\\td",
    "héllo wörld ✓ 日本語 🚀",
    "line one\n  $NOT_EXPANDED",
    "a;b|c&d",
    "back tick",
    "recovered",
]


class BackendContract:
    """Subclass and provide the ``settings`` fixture."""

    mode: ExecutionMode
    backend: str
    """The name the results must report (``ExecutionResult.backend``)."""

    @pytest.fixture
    def workspace(self, tmp_path: Path) -> Path:
        directory = tmp_path / "workspace"
        directory.mkdir()
        return directory

    @pytest.fixture
    async def runner(self, settings: Settings):
        async with Runner(settings) as runner:
            yield runner

    async def run(
        self, runner: Runner, workspace: Path, command: str, **options
    ) -> ExecutionResult:
        return await runner.run(command, mode=self.mode, cwd=workspace, **options)

    async def timed(
        self, runner: Runner, workspace: Path, command: str, **options
    ) -> tuple[ExecutionResult, float]:
        """``command``'s result and how long it took, in a session whose sandbox is up
        already, so that a slow start on a loaded machine is not counted."""
        async with runner.session(mode=self.mode, cwd=workspace) as session:
            await session.run("true")
            started = time.monotonic()
            result = await session.run(command, **options)
            return result, time.monotonic() - started

    async def test_exit_code_and_streams_are_kept_apart(self, runner, workspace):
        result = await self.run(runner, workspace, "echo out; echo err >&2; exit 7")
        assert (result.exit_code, result.stdout, result.stderr) == (7, "out\n", "err\n")
        assert result.mode is self.mode
        assert result.backend == self.backend
        assert not result.timed_out
        assert not result.truncated

    @pytest.mark.parametrize(
        ("command", "expected"), list(zip(TRICKY_COMMANDS, EXPECTED, strict=True))
    )
    async def test_command_text_reaches_bash_untouched(self, runner, workspace, command, expected):
        result = await self.run(runner, workspace, command)
        assert result.exit_code == 0, result.stderr
        assert result.stdout == expected + "\n"

    async def test_syntax_error_is_bash_exit_2(self, runner, workspace):
        result = await self.run(runner, workspace, "echo 'unterminated")
        assert result.exit_code == 2
        assert "unexpected EOF" in result.stderr

    async def test_stdin_is_closed(self, runner, workspace):
        result = await self.run(runner, workspace, "cat; echo done", timeout=10)
        assert (result.exit_code, result.stdout) == (0, "done\n")

    async def test_output_streams_live_in_order(self, runner, workspace):
        chunks: list[tuple[Stream, str, float]] = []
        started = time.monotonic()
        result = await self.run(
            runner,
            workspace,
            "echo one; sleep 0.4; echo two >&2; sleep 0.4; echo three",
            on_output=lambda c: chunks.append((c.stream, c.text, time.monotonic() - started)),
        )
        assert result.exit_code == 0
        stdout = "".join(text for stream, text, _ in chunks if stream is Stream.STDOUT)
        assert stdout == "one\nthree\n"
        assert [text for stream, text, _ in chunks if stream is Stream.STDERR] == ["two\n"]
        first_at = next(at for _, text, at in chunks if "one" in text)
        last_at = next(at for _, text, at in chunks if "three" in text)
        assert last_at - first_at > 0.6, "the first line arrived only at the end"

    async def test_async_listener_receives_everything_in_order(self, runner, workspace):
        seen: list[str] = []

        async def slow(chunk: OutputChunk) -> None:
            await asyncio.sleep(0)
            seen.append(chunk.text)

        result = await self.run(
            runner, workspace, "for i in $(seq 1 2000); do echo line $i; done", on_output=slow
        )
        assert "".join(seen) == result.stdout
        assert result.stdout.splitlines()[-1] == "line 2000"

    async def test_timeout_keeps_partial_output_and_reports_124(self, runner, workspace):
        result, took = await self.timed(
            runner, workspace, "echo before; sleep 30; echo after", timeout=1
        )
        assert took < 10, f"a 1 s timeout took {took:.1f} s"
        assert result.timed_out
        assert result.exit_code == 124
        assert result.stdout == "before\n"

    async def test_timeout_holds_while_a_slow_listener_holds_back_the_output(
        self, runner, workspace
    ):
        async def slow(chunk: OutputChunk) -> None:
            await asyncio.sleep(0.01)

        result, took = await self.timed(
            runner, workspace, "yes | head -c 30000000; sleep 30", timeout=2, on_output=slow
        )
        assert (result.timed_out, result.exit_code) == (True, 124)
        assert took < 12, f"a 2 s timeout took {took:.1f} s with a slow listener"
        assert result.stdout.startswith("y\ny\n")

    async def test_timeout_kills_the_whole_process_tree(self, runner, workspace):
        await self.run(
            runner, workspace, "(sleep 31.5; echo leaked > leaked.txt) & sleep 32.5", timeout=0.5
        )
        await asyncio.sleep(0.5)
        check = await self.run(runner, workspace, "pgrep -f 'slee[p] 3[12].5' || echo none")
        assert check.stdout.strip() == "none"

    async def test_background_child_does_not_hold_the_command(self, runner, workspace):
        result, took = await self.timed(runner, workspace, "sleep 20 & echo started")
        assert result.stdout == "started\n"
        assert took < 10, f"a command whose background child sleeps 20 s took {took:.1f} s"

    async def test_large_output_is_capped_head_and_tail(self, settings, workspace):
        capped = settings.model_copy(update={"max_output_bytes": 64 * 1024})
        async with Runner(capped) as runner:
            result = await self.run(runner, workspace, "seq 1 200000; echo the-end")
        assert result.truncated
        assert result.stdout.startswith("1\n2\n3\n")
        assert result.stdout.endswith("200000\nthe-end\n")
        assert "bytes of output dropped" in result.stdout
        assert len(result.stdout.encode()) < 64 * 1024 + 200

    async def test_session_keeps_cwd_and_exported_variables(self, runner, workspace):
        async with runner.session(mode=self.mode, cwd=workspace) as session:
            await session.run("mkdir -p sub/deeper && cd sub && export GREETING='hi there' PLAIN=1")
            result = await session.run('pwd; echo "$GREETING/$PLAIN"')
            assert result.stdout.splitlines()[0].endswith("/sub")
            assert result.stdout.splitlines()[1] == "hi there/1"
            await session.run("cd deeper; unset PLAIN")
            result = await session.run('pwd; echo "${PLAIN-unset}"')
            assert result.stdout.splitlines() == [result.stdout.splitlines()[0], "unset"]
            assert result.stdout.splitlines()[0].endswith("/sub/deeper")

    async def test_state_survives_exit_and_failure(self, runner, workspace):
        async with runner.session(mode=self.mode, cwd=workspace) as session:
            failed = await session.run("mkdir -p d && cd d && export KEPT=yes && exit 3")
            assert failed.exit_code == 3
            result = await session.run("basename $PWD; echo $KEPT")
            assert result.stdout == "d\nyes\n"

    async def test_per_command_env_does_not_stick(self, runner, workspace):
        async with runner.session(mode=self.mode, cwd=workspace, env={"BASE": "b"}) as session:
            result = await session.run('echo "$BASE $ONCE"', env={"ONCE": "o"})
            assert result.stdout == "b o\n"
            result = await session.run('echo "$BASE ${ONCE-gone}"')
            assert result.stdout == "b gone\n"

    async def test_sessions_are_isolated_and_concurrent(self, runner, workspace):
        async def one(index: int) -> str:
            async with runner.session(mode=self.mode, cwd=workspace) as session:
                await session.run(f"mkdir -p s{index} && cd s{index} && export MINE={index}")
                await asyncio.sleep(0.05)
                result = await session.run('echo "$(basename $PWD) $MINE"')
                return result.stdout.strip()

        outputs = await asyncio.gather(*(one(i) for i in range(4)))
        assert outputs == [f"s{i} {i}" for i in range(4)]

    async def test_commands_in_one_session_run_one_at_a_time(self, runner, workspace):
        async with runner.session(mode=self.mode, cwd=workspace) as session:
            results = await asyncio.gather(
                session.run("echo a >> log; sleep 0.3; echo b >> log"),
                session.run("echo c >> log"),
            )
            assert all(r.exit_code == 0 for r in results)
            log = await session.run("cat log")
            assert log.stdout == "a\nb\nc\n"

    async def test_cancellation_kills_the_command(self, runner, workspace):
        async with runner.session(mode=self.mode, cwd=workspace) as session:
            task = asyncio.create_task(session.run("sleep 33.5; echo done > done.txt"))
            await asyncio.sleep(0.5)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            check = await session.run("sleep 0.2; pgrep -f 'slee[p] 33.5' || echo none")
            assert check.stdout.strip() == "none"

    async def test_stream_yields_chunks_then_the_result(self, runner, workspace):
        async with runner.session(mode=self.mode, cwd=workspace) as session:
            items = [item async for item in session.stream("echo a; echo b >&2")]
        assert isinstance(items[-1], ExecutionResult)
        chunks = items[:-1]
        assert {(c.stream, c.text) for c in chunks} == {
            (Stream.STDOUT, "a\n"),
            (Stream.STDERR, "b\n"),
        }

    async def test_closed_session_refuses_commands(self, runner, workspace):
        from agent_runner.errors import SessionClosed

        session = runner.session(mode=self.mode, cwd=workspace)
        await session.run("true")
        await session.close()
        with pytest.raises(SessionClosed):
            await session.run("true")

    async def test_a_command_longer_than_one_argument_may_be_runs(self, runner, workspace):
        body = "x" * 300_000
        one_off = await self.run(runner, workspace, f"cat <<'EOF' | wc -c\n{body}\nEOF")
        assert (one_off.exit_code, one_off.stdout.strip()) == (0, "300001")
        async with runner.session(mode=self.mode, cwd=workspace) as session:
            result = await session.run(f"cat <<'EOF' | wc -c\n{body}\nEOF")
            assert (result.exit_code, result.stdout.strip()) == (0, "300001")
            result = await session.run(f"LONG='{body[:200_000]}'; cd /; echo ${{#LONG}}")
            assert result.stdout == "200000\n"
            assert (await session.run("pwd")).stdout == "/\n"

    @pytest.mark.parametrize(
        ("options", "expected"),
        [
            ({"command": "echo a\0b"}, "NUL byte"),
            ({"env": {"A=B": "x"}}, "not a variable name"),
            ({"env": {"": "x"}}, "not a variable name"),
            ({"env": {"A": "x\0y"}}, "NUL byte"),
            ({"timeout": float("nan")}, "finite number"),
            ({"timeout": float("inf")}, "finite number"),
            ({"timeout": -1}, "finite number"),
            ({"timeout": 0}, "finite number"),
        ],
    )
    async def test_bad_input_is_one_clear_error_and_the_session_goes_on(
        self, runner, workspace, options, expected
    ):
        from agent_runner.errors import InvalidSetting

        async with runner.session(mode=self.mode, cwd=workspace) as session:
            options = dict(options)
            command = options.pop("command", "echo never")
            with pytest.raises(InvalidSetting, match=expected) as error:
                await session.run(command, **options)
            assert "\n" not in str(error.value)
            with pytest.raises(InvalidSetting, match=expected):
                await session.start(command, **options)
            assert (await session.run("echo still here")).stdout == "still here\n"

    # -- processes beside the session's commands ---------------------------------------

    async def test_process_returns_at_once_and_is_polled_to_its_end(self, runner, workspace):
        async with runner.session(mode=self.mode, cwd=workspace) as session:
            process = await session.start("sleep 1; echo done; exit 3")
            assert process.status is ProcessStatus.RUNNING
            assert await process.wait(timeout=60) == 3
            assert process.status is ProcessStatus.EXITED
            page = process.read()
            assert (page.data, page.next_cursor, page.dropped) == (b"done\n", 5, 0)
            assert process.read(cursor=page.next_cursor).data == b""

    async def test_process_stdin_is_written_and_closed(self, runner, workspace):
        async with runner.session(mode=self.mode, cwd=workspace) as session:
            process = await session.start("cat; echo end-of-input", stdin=True)
            await process.write(b"first line\n")
            await process.write("second line\n")
            await process.close_stdin()
            assert await process.wait(timeout=60) == 0
            assert process.read().data == b"first line\nsecond line\nend-of-input\n"

    async def test_process_without_stdin_reads_an_empty_one(self, runner, workspace):
        async with runner.session(mode=self.mode, cwd=workspace) as session:
            process = await session.start("cat; echo after")
            assert await process.wait(timeout=60) == 0
            assert process.read().data == b"after\n"

    async def test_killing_a_process_ends_its_whole_tree(self, runner, workspace):
        async with runner.session(mode=self.mode, cwd=workspace) as session:
            process = await session.start("sleep 41.5 & sleep 42.5; wait")
            await asyncio.sleep(0.3)
            await process.kill()
            assert await process.wait(timeout=60) is not None
            assert process.status is ProcessStatus.KILLED
            check = await session.run("sleep 0.2; pgrep -f 'slee[p] 4[12].5' || echo none")
            assert check.stdout.strip() == "none"

    async def test_a_process_that_ignores_term_is_killed_after_the_grace(self, runner, workspace):
        async with runner.session(mode=self.mode, cwd=workspace) as session:
            process = await session.start("trap '' TERM; echo ready; sleep 43.5")
            await self.until_output(process, b"ready")
            await process.kill("TERM", grace=0.5)
            assert await process.wait(timeout=60) == 128 + 9
            assert process.status is ProcessStatus.KILLED

    async def test_process_timeout_reports_124(self, runner, workspace):
        async with runner.session(mode=self.mode, cwd=workspace) as session:
            process = await session.start("echo started; sleep 44.5", timeout=0.5)
            assert await process.wait(timeout=60) == 124
            assert process.status is ProcessStatus.TIMED_OUT
            assert process.read().data == b"started\n"

    async def test_processes_run_beside_commands_and_keep_their_cd_to_themselves(
        self, runner, workspace
    ):
        async with runner.session(mode=self.mode, cwd=workspace) as session:
            await session.run("mkdir -p here there && cd here && export WHERE=here")
            slow = await session.start("pwd; echo $WHERE; cd ../there; export WHERE=gone; sleep 2")
            fast = await session.start("echo quick")
            result = await session.run("pwd; echo $WHERE")
            assert await fast.wait(timeout=60) == 0
            assert fast.read().data == b"quick\n"
            assert result.stdout.splitlines()[0].endswith("/here")
            assert result.stdout.splitlines()[1] == "here"
            assert await slow.wait(timeout=60) == 0
            lines = slow.read().data.decode().splitlines()
            assert lines[0].endswith("/here")
            assert lines[1] == "here"
            after = await session.run("pwd; echo $WHERE")
            assert after.stdout == result.stdout
            assert [p.id for p in session.processes()] == [slow.id, fast.id]

    async def test_process_env_is_its_own(self, runner, workspace):
        async with runner.session(mode=self.mode, cwd=workspace, env={"BASE": "b"}) as session:
            process = await session.start('echo "$BASE $ONLY"', env={"ONLY": "o"})
            assert await process.wait(timeout=60) == 0
            assert process.read().data == b"b o\n"
            assert (await session.run('echo "${ONLY-unset}"')).stdout == "unset\n"

    async def test_large_process_output_pages_by_cursor_and_reports_what_it_dropped(
        self, settings, workspace
    ):
        capped = settings.model_copy(update={"max_output_bytes": 64 * 1024})
        async with (
            Runner(capped) as runner,
            runner.session(mode=self.mode, cwd=workspace) as session,
        ):
            process = await session.start("seq 1 200000; echo the-end >&2")
            assert await process.wait(timeout=120) == 0
            expected = "".join(f"{i}\n" for i in range(1, 200001)).encode()
            assert process.total() == len(expected)
            cursor, kept, dropped = 0, b"", 0
            while True:
                page = process.read(cursor, max_bytes=10_000)
                if not page.data:
                    break
                kept += page.data
                dropped += page.dropped
                cursor = page.next_cursor
            assert cursor == len(expected)
            assert len(kept) + dropped == len(expected)
            assert expected.startswith(kept[: 32 * 1024])
            assert expected.endswith(kept[-32 * 1024 :])
            assert dropped == len(expected) - 64 * 1024
            assert process.read(stream="stderr").data == b"the-end\n"

    async def test_an_adopted_process_carries_its_cd_and_exports_like_run(self, runner, workspace):
        async with runner.session(mode=self.mode, cwd=workspace) as session:
            await session.run("mkdir -p a/b && export KEEP=1 GONE=1")
            process = await session.start(
                "cd a/b && export NEW='x y' && unset GONE && echo out && echo err >&2; exit 4",
                keep_state=True,
                env={"ONCE": "1"},
            )
            assert await process.wait(timeout=60) == 4
            assert (process.read().data, process.read(stream="stderr").data) == (
                b"out\n",
                b"err\n",
            )
            assert await session.adopt(process, env={"ONCE": "1"})
            result = await session.run(
                'basename "$PWD"; echo "$KEEP/$NEW/${GONE-unset}/${ONCE-unset}"'
            )
            assert result.stdout == "b\n1/x y/unset/unset\n"

    async def test_adopting_keeps_what_ran_in_the_meantime(self, runner, workspace):
        async with runner.session(mode=self.mode, cwd=workspace) as session:
            await session.run("mkdir -p later && export LATER=0 MINE=0")
            process = await session.start("sleep 0.3; export MINE=1", keep_state=True)
            await session.run("cd later && export LATER=1")
            assert await process.wait(timeout=60) == 0
            assert await session.adopt(process)
            result = await session.run('basename "$PWD"; echo "$LATER/$MINE"')
            assert result.stdout == "later\n1/1\n"

    async def test_a_killed_process_is_not_adopted(self, runner, workspace):
        async with runner.session(mode=self.mode, cwd=workspace) as session:
            process = await session.start("cd /; export X=1; sleep 46.5", keep_state=True)
            await process.kill("KILL")
            await process.wait(timeout=60)
            assert not await session.adopt(process)
            assert (await session.run("echo ${X-unset}")).stdout == "unset\n"
            session.discard(process.id)
            assert session.processes() == []

    async def test_closing_the_session_kills_its_processes(self, runner, workspace):
        session = runner.session(mode=self.mode, cwd=workspace)
        process = await session.start("echo up; sleep 45.5")
        await self.until_output(process, b"up")
        await session.close()
        assert process.status is ProcessStatus.KILLED
        async with runner.session(mode=self.mode, cwd=workspace) as other:
            check = await other.run("pgrep -f 'slee[p] 45.5' || echo none")
            assert check.stdout.strip() == "none"

    async def test_live_output_reaches_the_listener(self, runner, workspace):
        seen: list[bytes] = []
        async with runner.session(mode=self.mode, cwd=workspace) as session:
            process = await session.start(
                "echo one; sleep 0.3; echo two", on_output=lambda chunk: seen.append(chunk.data)
            )
            assert await process.wait(timeout=60) == 0
        assert b"".join(seen) == b"one\ntwo\n"

    @staticmethod
    async def until_output(process, expected: bytes, timeout: float = 60) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while expected not in process.read().data:
            assert loop.time() < deadline, f"no {expected!r} from {process!r}"
            await asyncio.sleep(0.02)
