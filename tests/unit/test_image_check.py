"""The image contract as a checklist: verdicts from a probe's answers."""

import re

from agent_runner.images.check import FULL_TOOLS, Checklist, contract_items, runner_item
from tests.conftest import ROOT


class Probe:
    """Answers like an image that has ``present`` (commands by their first word)."""

    uid = 4242

    def __init__(self, *present: str, python: str = "3.11.2", up: bool = True, stays_up=True):
        self.present = set(present)
        self.python = python
        self.up = up
        self.stays_up = stays_up
        self.calls = 0

    def running(self) -> bool:
        self.calls += 1
        return self.up if self.calls == 1 else self.up and self.stays_up

    def run(self, argv):
        program = argv[0]
        if program in ("bash", "sh"):
            script = argv[-1]
            if program not in self.present:
                return 127, f"exec: {program}: not found"
            if "BASH_VERSION" in script:
                return 0, "5.2.15(1)-release\n"
            if "/workspace" in script:
                return (0, "") if "workspace" in self.present else (1, "Permission denied")
            tool = script.split("HOME=/tmp/stigmer-check-home ", 1)[1].split()[0]
            return (0, f"{tool} 1.0\nmore\n") if tool in self.present else (127, "not found")
        if program == "python3":
            if "python3" not in self.present:
                return 127, "not found"
            if "pip" in argv:
                return (
                    (0, "pip 23.0.1 from /usr/lib (python 3.11)")
                    if "pip" in self.present
                    else (1, "No module named pip")
                )
            return 0, self.python + "\n"
        return 127, "not found"


def by_name(items):
    return {item.name: item for item in items}


def checklist(items):
    return Checklist("img", "sha256:" + "0" * 64, 1, None, tuple(items))


def test_a_complete_image_passes():
    items = by_name(contract_items(Probe("bash", "sh", "workspace", "python3", "pip"), None))
    assert [i.status for i in items.values()] == ["ok"] * 5
    assert items["python3"].detail == "python3 3.11.2: commands take the fast path"
    assert items["workspace"].detail == "uid 4242 (no passwd entry) can write /workspace"
    assert checklist(items.values()).passed


def test_without_python_it_passes_with_a_slow_path_warning():
    items = by_name(contract_items(Probe("bash", "sh", "workspace"), None))
    assert items["python3"].status == "warn"
    assert "slow path" in items["python3"].detail
    assert items["pip"].status == "warn"
    assert checklist(items.values()).passed


def test_an_old_python_is_a_warning_too():
    items = by_name(contract_items(Probe("bash", "workspace", "python3", python="3.7.9"), None))
    assert items["python3"].status == "warn"
    assert items["python3"].detail == "python3 3.7.9 is older than 3.8: commands take the slow path"


def test_no_bash_or_no_writable_workspace_fails():
    items = contract_items(Probe("sh", "python3"), None)
    result = checklist(items)
    assert not result.passed
    assert {i.name for i in result.failed} == {"bash", "workspace"}
    assert by_name(items)["workspace"].detail.endswith("Permission denied")


def test_a_container_that_does_not_stay_up_fails_sleep_and_checks_nothing_else():
    items = by_name(contract_items(Probe(up=False), None))
    assert items["sleep"].status == "fail"
    assert {i.status for n, i in items.items() if n != "sleep"} == {"skip"}
    stopped = by_name(contract_items(Probe("bash", "workspace", stays_up=False), None))
    assert stopped["sleep"].status == "fail"


def test_a_tier_requires_its_tools_and_its_python():
    probe = Probe("bash", "workspace", "python3", "pip", "node", "npm", "git", "curl")
    items = by_name(contract_items(probe, "basic"))
    assert items["node"].detail == "node 1.0"
    assert items["jq"].status == "fail"
    assert "`jq --version` failed (127)" in items["jq"].detail
    assert [n for n in items if n in ("python3", "pip")] == ["python3", "pip"]  # once each
    no_pip = by_name(contract_items(Probe("bash", "workspace", "python3"), "basic"))
    assert (no_pip["pip"].status, no_pip["pip"].required) == ("fail", True)
    assert no_pip["pip"].detail.endswith("(the basic tier has it)")


def test_the_runner_item_says_which_path_commands_take():
    assert runner_item(0, "", fast=True).detail.endswith("(fast path: the executor runs it)")
    assert "slow path" in runner_item(0, "", fast=False).detail
    failed = runner_item(None, "image x has no bash; sandbox images need bash", fast=False)
    assert (failed.status, failed.required) == ("fail", True)


def test_the_full_tiers_dockerfile_checks_the_same_tools():
    """The checklist and the full tier's last build step must not drift apart."""
    dockerfile = (ROOT / "sandbox" / "Dockerfile.sandbox.full").read_text()
    last_check = dockerfile[dockerfile.index("USER 1000:1000\nRUN export HOME") :]
    last_check = last_check[: last_check.index("WORKDIR")]
    built = {
        re.sub(r"\s+", " ", c).split(" >")[0].strip()
        for c in re.findall(r"&& ([^&\\]+)", last_check)
    }
    built = {c for c in built if not c.startswith("rm ")}
    checked = {command for _, command in FULL_TOOLS}
    assert built - checked == set(), "tools the Dockerfile checks but image check does not"
