"""A local emulator of the Daytona API that the real ``daytona`` SDK (0.226.x) talks to.

Each emulated sandbox is a real Docker container; see ``README.md`` here for what is
emulated, what is not, and notes for whoever writes the Daytona backend against it.

    from tests.fakes.daytona import DaytonaEmulator

    with DaytonaEmulator(snapshots={"stigmer-dev-tools": "stigmer/sandbox-base:bookworm"}) as emu:
        config = DaytonaConfig(api_key=emu.api_key, api_url=emu.api_url)
"""

from tests.fakes.daytona.config import EmulatorConfig, SnapshotSpec
from tests.fakes.daytona.containers import INSTANCE_LABEL, LABEL, LABEL_VALUE
from tests.fakes.daytona.faults import Faults
from tests.fakes.daytona.server import DaytonaEmulator

__all__ = [
    "INSTANCE_LABEL",
    "LABEL",
    "LABEL_VALUE",
    "DaytonaEmulator",
    "EmulatorConfig",
    "Faults",
    "SnapshotSpec",
]
