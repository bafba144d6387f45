"""A fake Kubernetes API server for tests: real wire protocol, pods as Docker containers.

``FakeKube`` (server.py) is the public surface; ``Faults`` (faults.py) the fault switches.
See README.md beside this file for what is faithful, what is simplified, and what the fake
cannot prove.
"""

from tests.fakes.kube.faults import Faults
from tests.fakes.kube.server import FakeKube

__all__ = ["FakeKube", "Faults"]
