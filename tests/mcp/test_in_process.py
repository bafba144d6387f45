"""The server through ``mcp.Client(server)`` in this process, on both protocols."""

from __future__ import annotations

from contextlib import asynccontextmanager

import pytest

from agent_runner.mcp_server import build_server
from mcp import Client
from tests.mcp.conftest import server_settings
from tests.mcp.suite import McpContract


class InProcess(McpContract):
    protocol = "2026-07-28"

    @pytest.fixture
    def connect(self, workspace):
        @asynccontextmanager
        async def connect():
            server = build_server(server_settings(), str(workspace))
            async with Client(server, mode=self.protocol) as client:
                yield client

        return connect


class TestModern(InProcess):
    protocol = "2026-07-28"


class TestLegacy(InProcess):
    protocol = "legacy"
