"""One module per contender, each with ``measure(cfg, results)``.

The four peers (:mod:`peers.docker_py`, :mod:`peers.llm_sandbox`, :mod:`peers.swerex`,
:mod:`peers.epicbox`) run in the peer venv, one worker subprocess each; :mod:`peers.ours`
(async) and :mod:`peers.host` (the floor) run in the project's interpreter. A module
imports its library where it measures, so the driver can import any of them.
"""

from __future__ import annotations

import importlib

from harness.workers import Measure

PEERS = ("docker-py", "epicbox", "swe-rex", "llm-sandbox")
"""The peers, in the order they run."""
_MODULES = {
    "docker-py": "docker_py",
    "epicbox": "epicbox",
    "swe-rex": "swerex",
    "llm-sandbox": "llm_sandbox",
}


def measure_peer(name: str) -> Measure:
    """The measurement of peer ``name``, imported when asked for."""
    module = importlib.import_module(f"peers.{_MODULES[name]}")
    result: Measure = module.measure
    return result
