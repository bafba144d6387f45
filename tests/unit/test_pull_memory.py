"""A failed pull is remembered for an hour, per image and per credentials."""

import json

from agent_runner.images.cache import CACHE_DIR_VARIABLE, cache_dir, file_lock
from agent_runner.images.memory import REMEMBER_SECONDS, Failure, PullMemory

IMAGE = "ghcr.io/stigmer/agent-sandbox:latest"


def failure(at: float = 1000.0, credentials: str = "anonymous", image: str = IMAGE) -> Failure:
    return Failure(image, f"cannot pull {image}: unreachable", "unreachable", at, credentials)


def test_a_failure_is_trusted_for_an_hour_then_tried_again(tmp_path):
    memory = PullMemory(tmp_path)
    memory.remember_failure(failure(at=1000.0))
    assert REMEMBER_SECONDS == 3600
    assert memory.recent(IMAGE, "anonymous", now=1000.0 + 3599) == failure(at=1000.0)
    assert memory.recent(IMAGE, "anonymous", now=1000.0 + 3600) is None
    assert memory.recent(IMAGE, "anonymous", now=999.0) is None  # a clock that went back


def test_other_credentials_are_news(tmp_path):
    memory = PullMemory(tmp_path)
    memory.remember_failure(failure(credentials="anonymous"))
    assert memory.recent(IMAGE, "0123456789abcdef", now=1001.0) is None


def test_it_is_per_image_and_forgotten_after_a_good_pull(tmp_path):
    memory = PullMemory(tmp_path)
    memory.remember_failure(failure())
    memory.remember_failure(failure(image="other:1"))
    memory.forget(IMAGE)
    assert memory.recent(IMAGE, "anonymous", now=1001.0) is None
    assert memory.recent("other:1", "anonymous", now=1001.0) is not None


def test_it_survives_the_process_in_a_private_file(tmp_path):
    PullMemory(tmp_path).remember_failure(failure())
    assert PullMemory(tmp_path).recent(IMAGE, "anonymous", now=1001.0) is not None
    path = tmp_path / "pull-failures.json"
    assert path.stat().st_mode & 0o077 == 0
    assert json.loads(path.read_text())[IMAGE]["kind"] == "unreachable"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_damaged_file_is_an_empty_memory(tmp_path):
    (tmp_path / "pull-failures.json").write_text("{not json")
    memory = PullMemory(tmp_path)
    assert memory.recent(IMAGE, "anonymous") is None
    memory.remember_failure(failure())
    assert memory.recent(IMAGE, "anonymous", now=1001.0) is not None
    (tmp_path / "pull-failures.json").write_text('{"x": {"unexpected": 1}}')
    assert memory.recent("x", "anonymous") is None


def test_the_cache_directory_follows_the_environment(tmp_path):
    assert cache_dir({CACHE_DIR_VARIABLE: str(tmp_path / "c")}) == tmp_path / "c"
    xdg = cache_dir({"XDG_CACHE_HOME": str(tmp_path / "xdg")})
    assert xdg == tmp_path / "xdg" / "stigmer" / "agent-runner"
    assert xdg.stat().st_mode & 0o077 == 0


def test_a_lock_file_makes_a_second_holder_wait_and_says_so(tmp_path):
    import threading

    waiting = threading.Event()
    order = []

    def second():
        with file_lock(tmp_path / "x.lock", on_wait=waiting.set):
            order.append("second")

    with file_lock(tmp_path / "x.lock"):
        thread = threading.Thread(target=second)
        thread.start()
        assert waiting.wait(timeout=60), "the second holder never found the lock taken"
        order.append("first")
    thread.join(timeout=60)
    assert order == ["first", "second"]
