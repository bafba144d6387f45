"""epicbox: one container per command (create, start, wait, remove). Runs in the peer venv.

Quirk: epicbox 1.1.0 passes urllib3 1.x's ``method_whitelist``; a small ``Retry`` subclass
maps it to ``allowed_methods`` before epicbox is imported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.config import COMMAND, Config, package_version
from harness.results import Results
from harness.timing import check_output, ms_since, repeat, repeat_rounds, threaded_first_output


def install_retry_shim() -> None:
    """epicbox 1.1.0 passes ``method_whitelist``, which urllib3 2 renamed ``allowed_methods``."""
    import urllib3.util.retry as retry_module

    if "method_whitelist" in retry_module.Retry.__init__.__code__.co_varnames:
        return

    class Retry(retry_module.Retry):
        def __init__(self, *args: Any, method_whitelist: Any = None, **kwargs: Any) -> None:
            if method_whitelist is not None:
                kwargs.setdefault("allowed_methods", method_whitelist)
            super().__init__(*args, **kwargs)

    retry_module.Retry = Retry  # type: ignore[misc]


def measure(cfg: Config, results: Results) -> dict[str, str]:
    install_retry_shim()
    import epicbox

    epicbox.configure(profiles=[epicbox.Profile("bench", cfg.image)])

    def run_hi() -> None:
        result = epicbox.run("bench", COMMAND)
        check_output(result["stdout"], "epicbox.run")

    def first_output(t0: float) -> tuple[float, Callable[[], object]]:
        run_hi()
        return ms_since(t0), lambda: None

    results.attempt(
        "cold",
        "epicbox.run",
        lambda: repeat(run_hi, cfg.cold_rounds, warmup=1, settle=cfg.settle),
        "one container per command (create, start, wait, remove), network disabled",
    )
    results.attempt(
        "8 concurrent",
        "epicbox.run",
        lambda: repeat_rounds(
            lambda: threaded_first_output(first_output, cfg.concurrency),
            cfg.concurrent_rounds,
            cfg.settle,
        ),
        f"{cfg.concurrency} threads each running epicbox.run (includes its removal)",
    )
    return {"epicbox": package_version("epicbox"), "urllib3": package_version("urllib3")}
