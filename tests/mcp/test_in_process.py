"""The server through ``mcp.Client(server)`` in this process, on both protocols."""

from __future__ import annotations

import pytest

from agent_runner.mcp_server import build_server
from tests.mcp.conftest import server_settings
from tests.mcp.suite import McpContract


class InProcess(McpContract):
    @pytest.fixture
    def target(self, workspace):
        return lambda: build_server(server_settings(), str(workspace))


class TestModern(InProcess):
    protocol = "2026-07-28"


class TestLegacy(InProcess):
    protocol = "legacy"
