"""What a sandboxed command wrote in the workspace, from host-side snapshots around it."""

from __future__ import annotations

import os
import time
from pathlib import Path

from agent_runner.auto import snapshot
from agent_runner.auto.written import Entry


def nothing(_relative: str) -> bool:
    return False


def cool() -> None:
    """Let what the test wrote so far grow older than a clock tick (HOT_NS)."""
    time.sleep(snapshot.HOT_NS * 1.5 / 1e9)


def written(root: Path, act, skip=nothing, limits=None, settle=True) -> snapshot.Changes:
    if settle:
        cool()
    before = snapshot.take(str(root), skip, limits)
    act()
    return snapshot.changes(before, str(root), skip, limits)


def test_new_and_changed_files_are_found_with_whether_they_hold_code(tmp_path):
    (tmp_path / "app.py").write_text("print(1)\n")
    (tmp_path / "notes.txt").write_text("a\n")
    (tmp_path / "sub").mkdir()

    def act():
        (tmp_path / "run.sh").write_text("touch x\n")
        (tmp_path / "sub" / "data.json").write_text("{}")
        (tmp_path / "app.py").write_text("print(2)\n")

    found = written(tmp_path, act)
    assert found.overflow is None
    assert found.written == {
        "run.sh": Entry(False, True),
        "sub/data.json": Entry(False, False),
        "app.py": Entry(False, True),
    }


def test_a_rewrite_that_keeps_size_and_mtime_is_still_seen(tmp_path):
    target = tmp_path / "notes.txt"
    target.write_text("aaaa")
    stat = target.stat()

    def act():
        target.write_text("bbbb")
        os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # touch -d: mtime put back

    assert list(written(tmp_path, act).written) == ["notes.txt"]


def test_a_file_changed_just_before_may_change_unseen_so_it_counts(tmp_path):
    """Within one kernel clock tick a rewrite need not move the ctime."""
    (tmp_path / "fresh.sh").write_text("echo hi\n")
    found = written(tmp_path, lambda: None, settle=False)
    assert list(found.written) == ["fresh.sh"]


def test_chmod_and_a_rename_into_place_are_writes(tmp_path):
    (tmp_path / "tool").write_text("echo hi\n")
    (tmp_path / "staged").write_text("evil\n")

    def act():
        (tmp_path / "tool").chmod(0o755)
        (tmp_path / "staged").rename(tmp_path / "Makefile")

    found = written(tmp_path, act).written
    assert found == {"tool": Entry(False, True), "Makefile": Entry(False, True)}


def test_a_new_directory_is_recorded_whole_and_not_walked(tmp_path):
    def act():
        data = tmp_path / "out"
        data.mkdir()
        (data / "report.json").write_text("{}")
        modules = tmp_path / "node_modules" / "left-pad"
        modules.mkdir(parents=True)
        (modules / "index.js").write_text("module.exports = 1\n")

    found = written(tmp_path, act).written
    assert found == {"out": Entry(True, False), "node_modules": Entry(True, True)}


def test_a_new_directory_too_big_to_look_through_counts_as_code(tmp_path):
    def act():
        big = tmp_path / "vendor"
        big.mkdir()
        for index in range(20):
            (big / f"file{index}.txt").write_text("")

    limits = snapshot.Limits(look_into=5)
    assert written(tmp_path, act, limits=limits).written == {"vendor": Entry(True, True)}


def test_symbolic_links_and_git_internals_hold_code(tmp_path):
    (tmp_path / ".git" / "hooks").mkdir(parents=True)

    def act():
        (tmp_path / "link").symlink_to("/etc/passwd")
        (tmp_path / ".git" / "hooks" / "pre-commit.sample").write_text("x")
        (tmp_path / ".git" / "config").write_text("[core]\n")

    found = written(tmp_path, act).written
    assert found == {
        "link": Entry(False, True),
        ".git/hooks/pre-commit.sample": Entry(False, True),
        ".git/config": Entry(False, True),
    }


def test_git_objects_and_skipped_directories_are_not_walked(tmp_path):
    (tmp_path / ".git" / "objects" / "ab").mkdir(parents=True)
    (tmp_path / "held").mkdir()

    def act():
        (tmp_path / ".git" / "objects" / "ab" / "cdef").write_text("blob")
        (tmp_path / "held" / "x.py").write_text("")

    found = written(tmp_path, act, skip=lambda relative: relative == "held").written
    assert found == {}


def test_past_the_entry_bound_the_walk_says_so(tmp_path):
    for index in range(30):
        (tmp_path / f"f{index}").write_text("")
    limits = snapshot.Limits(entries=10)
    before = snapshot.take(str(tmp_path), nothing, limits)
    assert before.overflow == "it has more than 10 entries, too many to track"
    found = snapshot.changes(before, str(tmp_path), nothing, limits)
    assert (found.overflow, found.written) == (before.overflow, {})


def test_past_the_time_bound_the_walk_says_so(tmp_path):
    for index in range(600):
        (tmp_path / f"f{index}").write_text("")
    before = snapshot.take(str(tmp_path), nothing, snapshot.Limits(seconds=-1))
    assert before.overflow is not None
    assert "too long to track" in before.overflow


def test_an_unreadable_or_vanished_directory_is_passed_over(tmp_path):
    (tmp_path / "gone").mkdir()

    def act():
        (tmp_path / "gone").rmdir()
        (tmp_path / "new.sh").write_text("")

    assert list(written(tmp_path, act).written) == ["new.sh"]
