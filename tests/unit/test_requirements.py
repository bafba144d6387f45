"""A requirements file is read once, on the host, and every refusal is one line naming it."""

import pytest

from agent_runner.errors import InvalidSetting, RequirementsError
from agent_runner.modes import ExecutionMode
from agent_runner.requirements import MAX_BYTES, Requirements, for_command, keeps_one_image


def write(tmp_path, text: str | bytes, name: str = "requirements.txt"):
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def test_the_bytes_read_are_the_bytes_hashed(tmp_path):
    path = write(tmp_path, "six==1.16.0\n")
    read = Requirements.read(path)
    assert read.content == b"six==1.16.0\n"
    assert read.path == path
    path.write_text("six==1.17.0\n")
    assert Requirements.read(path).sha256 != read.sha256


def test_a_relative_path_is_made_absolute(tmp_path, monkeypatch):
    write(tmp_path, "six\n")
    monkeypatch.chdir(tmp_path)
    assert Requirements.read("requirements.txt").path == tmp_path / "requirements.txt"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00", "is not a text file"),
        (b"six\x00\n", "is not a text file"),
        ("# only a comment\n\n", "lists no packages"),
        ("--index-url https://example.org/simple\n", "lists no packages"),
        ("-r other.txt\n", "line 1 ('-r other.txt') refers to another file"),
        ("six\n-rother.txt\n", "line 2"),
        ("--requirement=other.txt\n", "refers to another file"),
        ("-c constraints.txt\nsix\n", "refers to another file"),
        ("-e ./mypackage\n", "refers to another file"),
        ("./local-package\n", "or a local path"),
        ("file:///wheels/x.whl\n", "or a local path"),
    ],
)
def test_what_pip_could_not_take_from_this_file_alone_is_refused(tmp_path, content, message):
    path = write(tmp_path, content)
    with pytest.raises(RequirementsError, match="requirements file .*requirements.txt") as refused:
        Requirements.read(path)
    assert message in str(refused.value)
    assert "\n" not in str(refused.value)


def test_options_comments_and_markers_are_left_to_pip(tmp_path):
    text = (
        "\ufeff--index-url https://pypi.org/simple  # the default\n"
        "six==1.16.0 ; python_version >= '3.8'  # pinned\n"
        "requests[socks]>=2\n"
    )
    assert Requirements.read(write(tmp_path, text.encode("utf-8"))).content


def test_missing_file_directory_and_size_are_one_line_each(tmp_path):
    with pytest.raises(RequirementsError, match=r"requirements file .*nope.txt does not exist"):
        Requirements.read(tmp_path / "nope.txt")
    with pytest.raises(RequirementsError, match="is a directory, not a file"):
        Requirements.read(tmp_path)
    big = write(tmp_path, "six\n" + "#" * MAX_BYTES)
    with pytest.raises(RequirementsError, match="in at most 1024 KiB"):
        Requirements.read(big)


def test_requirements_need_the_sandbox(tmp_path):
    path = write(tmp_path, "six\n")
    with pytest.raises(InvalidSetting, match="runs in local mode: use sandbox or auto mode"):
        for_command(path, ExecutionMode.LOCAL, ExecutionMode.LOCAL)
    # AUTO, where a user rule sent the command to the host: the host has what it has.
    assert for_command(path, ExecutionMode.LOCAL, ExecutionMode.AUTO) is None
    assert for_command(path, ExecutionMode.SANDBOX, ExecutionMode.AUTO) is not None
    assert for_command(None, ExecutionMode.SANDBOX, ExecutionMode.SANDBOX) is None


def test_a_session_keeps_the_image_it_started_on(tmp_path):
    first = Requirements.read(write(tmp_path, "six\n", "a.txt"))
    same = Requirements.read(write(tmp_path, "six\n", "copy.txt"))
    other = Requirements.read(write(tmp_path, "attrs\n", "b.txt"))
    keeps_one_image("s1", first, same)  # same contents: the same image
    with pytest.raises(RequirementsError, match=r"started its sandbox on the image for .*a.txt"):
        keeps_one_image("s1", first, other)
    with pytest.raises(RequirementsError, match="started its sandbox without custom requirements"):
        keeps_one_image("s1", None, other)
    changed = Requirements.read(write(tmp_path, "attrs\n", "a.txt"))
    with pytest.raises(RequirementsError, match=r"\(the file has changed since\)"):
        keeps_one_image("s1", first, changed)
