"""Fixtures for the MCP server's tests: a workspace, settings, and the big-output command."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_runner import Settings

MIB = 1024 * 1024
BIG_LINES = 280_000
"""``seq`` lines of about 37 bytes: a little over 10 MB, multi-byte characters included."""


def big_output_command(lines: int) -> tuple[str, bytes]:
    line = "héllo wörld ✓ 日本語 🚀 {}\n"
    command = f"seq -f 'héllo wörld ✓ 日本語 🚀 %g' 1 {lines}"
    return command, "".join(line.format(i) for i in range(1, lines + 1)).encode()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    directory = tmp_path / "workspace"
    directory.mkdir()
    return directory


@pytest.fixture
def big_output() -> tuple[str, bytes]:
    return big_output_command(BIG_LINES)


def server_settings(**values) -> Settings:
    """What the tests' servers run with: a buffer that holds the big output whole."""
    values.setdefault("max_output_bytes", 16 * MIB)
    return Settings.defaults(**values)
