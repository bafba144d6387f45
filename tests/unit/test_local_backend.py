"""LOCAL-only behaviour: what the contract suite cannot express for every backend."""

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from agent_runner import Runner, Settings, execute_command
from agent_runner.errors import InvalidSetting, WorkingDirectoryMissing


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split()[2] != "Z"


async def test_timeout_kills_grandchildren_by_pid(tmp_path):
    pidfile = tmp_path / "pids"
    result = await execute_command(
        f"sleep 60 & echo $! > {pidfile}; bash -c 'sleep 60 & echo $! >> {pidfile}; wait'; wait",
        timeout=0.5,
        settings=Settings.defaults(),
    )
    assert result.timed_out
    pids = [int(line) for line in pidfile.read_text().split()]
    assert len(pids) == 2
    await asyncio.sleep(0.2)
    assert not any(alive(pid) for pid in pids)


async def test_timeout_is_enforced_even_if_term_is_ignored():
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await execute_command(
        "trap '' TERM INT; sleep 30", timeout=1, settings=Settings.defaults()
    )
    took = loop.time() - started
    assert result.timed_out
    assert took < 10, f"a 1 s timeout on a command that ignores TERM took {took:.1f} s"


async def test_closing_a_session_kills_what_its_commands_left_running(tmp_path):
    async with Runner(Settings.defaults()) as runner, runner.session(cwd=tmp_path) as session:
        result = await session.run("sleep 60 & echo $!")
        pid = int(result.stdout)
        assert alive(pid)
    await asyncio.sleep(0.1)
    assert not alive(pid)


async def test_missing_working_directory_is_a_clear_error(tmp_path):
    with pytest.raises(WorkingDirectoryMissing, match="does not exist"):
        await execute_command("true", cwd=tmp_path / "nope", settings=Settings.defaults())


async def test_deleted_session_directory_is_reported_not_hidden(tmp_path):
    async with Runner(Settings.defaults()) as runner, runner.session(cwd=tmp_path) as session:
        await session.run("mkdir gone && cd gone")
        await session.run("rmdir ../gone")
        result = await session.run("pwd")
    assert result.stdout.strip() == str(tmp_path)
    assert "no longer exists" in result.stderr


async def test_signal_death_maps_to_128_plus_signal():
    result = await execute_command("kill -9 $$", settings=Settings.defaults())
    assert result.exit_code == 137


async def test_unknown_mode_is_a_typed_error():
    with pytest.raises(InvalidSetting, match="expected one of local, sandbox, auto"):
        await execute_command("true", mode="turbo", settings=Settings.defaults())


def test_huge_output_keeps_the_runner_small(tmp_path):
    script = textwrap.dedent(
        """
        import asyncio, resource, sys
        from agent_runner import Settings, execute_command
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        result = asyncio.run(execute_command("yes | head -c 500000000", settings=Settings.defaults()))
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        assert result.exit_code == 0 and result.truncated, result
        print((after - before) // 1024, len(result.stdout))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    grown_mib, kept = map(int, done.stdout.split())
    assert grown_mib < 16, f"the runner grew by {grown_mib} MiB"
    assert 1024 * 1024 <= kept < 1024 * 1024 + 100


async def test_environment_of_the_host_is_visible_locally(monkeypatch):
    monkeypatch.setenv("AGENT_RUNNER_TEST_VALUE", "from-host")
    result = await execute_command('echo "$AGENT_RUNNER_TEST_VALUE"', settings=Settings.defaults())
    assert result.stdout == "from-host\n"


def test_path_objects_are_accepted(tmp_path: Path):
    result = asyncio.run(execute_command("pwd", cwd=tmp_path, settings=Settings.defaults()))
    assert result.stdout.strip() == str(tmp_path)


def processes_matching(pattern: str) -> list[int]:
    done = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
    return [int(pid) for pid in done.stdout.split()]


async def wait_until_gone(pattern: str, timeout: float = 30, *, present: bool = False) -> bool:
    """Whether the processes matching ``pattern`` are gone (or, ``present``, there)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while bool(processes_matching(pattern)) != present:
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


@pytest.mark.parametrize(
    "command",
    [
        "setsid sleep 1236.5 >/dev/null 2>&1 &",
        "nohup sleep 1236.5 >/dev/null 2>&1 &",
        "( ( setsid sleep 1236.5 & ) & ) >/dev/null 2>&1",
        "setsid bash -c 'trap \"\" TERM HUP; sleep 1236.5' >/dev/null 2>&1 < /dev/null &",
    ],
)
async def test_closing_a_session_ends_what_its_commands_detached(tmp_path, command):
    async with Runner(Settings.defaults()) as runner, runner.session(cwd=tmp_path) as session:
        await session.run(command)
        assert await wait_until_gone("slee[p] 1236.5", present=True), "it never started"
    assert await wait_until_gone("slee[p] 1236.5", timeout=5), "it outlived its session"


KILLED_RUNNER = textwrap.dedent(
    """
    import asyncio, sys
    from agent_runner import Runner, Settings
    async def main():
        async with Runner(Settings.defaults()) as runner, runner.session(cwd=sys.argv[1]) as s:
            await s.run("setsid sleep 1237.5 >/dev/null 2>&1 &")
            task = asyncio.ensure_future(s.run("sleep 1234.5"))
            while not task.done():
                await asyncio.sleep(0.05)
                probe = await asyncio.create_subprocess_exec(
                    "pgrep", "-f", "slee[p] 1234.5", stdout=asyncio.subprocess.DEVNULL
                )
                if await probe.wait() == 0:
                    break
            print("ready", flush=True)
            await task
    asyncio.run(main())
    """
)


async def test_a_killed_runner_leaves_no_local_process_behind(tmp_path):
    script = tmp_path / "runner.py"  # not -c: its text would match the pattern itself
    script.write_text(KILLED_RUNNER)
    runner = await asyncio.create_subprocess_exec(
        sys.executable, str(script), str(tmp_path), stdout=subprocess.PIPE
    )
    try:
        assert runner.stdout is not None
        assert await asyncio.wait_for(runner.stdout.readline(), 60) == b"ready\n"
        assert processes_matching("slee[p] 1234.5")
        assert processes_matching("slee[p] 1237.5")
    finally:
        runner.kill()
        await runner.wait()
    assert await wait_until_gone("slee[p] 123[47].5"), "a LOCAL command outlived its runner"


async def test_a_process_nobody_touches_past_the_ttl_is_killed_with_its_session(tmp_path):
    from agent_runner import ProcessStatus

    async with Runner(Settings.defaults(ttl=1)) as runner:
        session = runner.session(cwd=tmp_path)
        process = await session.start("sleep 1238.5")
        assert await process.wait(timeout=30) is not None, "the ttl never closed the session"
        assert process.status is ProcessStatus.KILLED
    assert await wait_until_gone("slee[p] 1238.5", timeout=5)


async def test_polling_a_process_keeps_its_session_open(tmp_path):
    async with Runner(Settings.defaults(ttl=1)) as runner:
        session = runner.session(cwd=tmp_path)
        process = await session.start("sleep 3; echo done")
        while process.running:
            process.read()
            await asyncio.sleep(0.2)
        assert process.exit_code == 0
        assert process.read().data == b"done\n"
