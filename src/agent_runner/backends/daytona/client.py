"""The SDK client for one set of settings, and its errors as the one line a user reads.

``AsyncDaytona`` only: the sync client bounds its calls with ``SIGALRM`` (main thread
only) or exceptions injected into threads. One client per backend, created on first use
inside the running loop (it opens its Socket.IO connection there) and closed with the
backend. Every SDK error that reaches a user goes through :func:`explain` first, which
names what failed in Daytona's own words and never carries the API key.
"""

from __future__ import annotations

from agent_runner.config.sections import DaytonaSettings
from agent_runner.errors import AgentRunnerError, ImageNotFound, InvalidSetting, SandboxUnavailable
from daytona import (
    AsyncDaytona,
    DaytonaAuthenticationError,
    DaytonaBadRequestError,
    DaytonaConfig,
    DaytonaConnectionError,
    DaytonaError,
    DaytonaForbiddenError,
    DaytonaNotFoundError,
    DaytonaRateLimitError,
    DaytonaTimeoutError,
)

DEFAULT_API_URL = "https://app.daytona.io/api"
"""Where the SDK goes when neither the settings nor ``DAYTONA_API_URL`` say."""
REQUEST_TIMEOUT = 60.0
"""Bound on a control call (get, list, start, delete...): the SDK's default is 300 s."""
_PREFIXES = ("Failed to ", "Failure during ")


def api_key(settings: DaytonaSettings) -> str:
    """The key, or the one line that says how to give one."""
    key = settings.api_key.get_secret_value().strip() if settings.api_key else ""
    if not key:
        raise InvalidSetting(
            "the Daytona backend needs an API key: set DAYTONA_API_KEY "
            "(or execution.sandbox.daytona.api_key); create one at https://app.daytona.io"
        )
    return key


def api_url(settings: DaytonaSettings) -> str:
    return settings.api_url or DEFAULT_API_URL


def connect(settings: DaytonaSettings) -> AsyncDaytona:
    """A client for ``settings``; call inside the loop that will use it."""
    config = DaytonaConfig(
        api_key=api_key(settings), api_url=api_url(settings), target=settings.target
    )
    try:
        return AsyncDaytona(config)
    except DaytonaError as error:
        raise explain(error, "connect", settings) from None


def _message(error: BaseException) -> str:
    """The SDK's text, first line, without its "Failed to ...: " prefixes."""
    text = str(getattr(error, "message", None) or error).strip()
    line = text.splitlines()[0] if text else type(error).__name__
    while line.startswith(_PREFIXES) and ": " in line:
        line = line.split(": ", 1)[1]
    return line or type(error).__name__


def _status(error: BaseException, message: str) -> str:
    status = getattr(error, "status_code", None)
    return f"{status} {message}" if status else message


def scrub(text: str, settings: DaytonaSettings) -> str:
    """``text`` with the API key masked, whatever put it there."""
    key = settings.api_key.get_secret_value() if settings.api_key else ""
    return text.replace(key, "***") if len(key) >= 4 else text


def explain(error: BaseException, doing: str, settings: DaytonaSettings) -> AgentRunnerError:
    """The one line for an SDK ``error`` that happened while trying to ``doing``."""
    message = _message(error)
    if isinstance(error, DaytonaAuthenticationError):
        line = (
            f"Daytona rejected the API key ({_status(error, message)}) while trying to "
            f"{doing}: check DAYTONA_API_KEY (or execution.sandbox.daytona.api_key)"
        )
    elif isinstance(error, DaytonaForbiddenError):
        line = (
            f"Daytona refused to {doing} ({_status(error, message)}): the API key lacks "
            "the permission for it, or the organization is suspended"
        )
    elif isinstance(error, DaytonaBadRequestError) and "limit exceeded" in message:
        line = f"Daytona quota exceeded, could not {doing}: {message}"
    elif isinstance(error, DaytonaRateLimitError):
        wait = error.headers.get("Retry-After") or error.headers.get("retry-after")
        later = f"; retry after {wait} s" if wait else "; retry later"
        line = f"Daytona rate limit reached, could not {doing}{later}"
    elif isinstance(error, DaytonaTimeoutError):
        line = f"Daytona did not {doing} in time: {message}"
    elif isinstance(error, DaytonaConnectionError):
        line = f"cannot reach the Daytona API at {api_url(settings)} to {doing}: {message}"
    else:
        line = f"Daytona could not {doing}: {_status(error, message)}"
    return SandboxUnavailable(scrub(line, settings))


def is_missing_snapshot(error: BaseException) -> bool:
    """How Daytona answers a create from an unknown snapshot (400, not 404)."""
    message = _message(error)
    return (
        isinstance(error, DaytonaBadRequestError | DaytonaNotFoundError)
        and message.startswith("Snapshot ")
        and "not found" in message
    )


async def missing_snapshot(client: AsyncDaytona, name: str | None) -> ImageNotFound:
    """The line for an unknown snapshot, naming the ones the organization has."""
    try:
        listed = await client.snapshot.list()
        names = sorted(s.name for s in listed.items if s.name)
        available = ", ".join(names) if names else "none"
    except DaytonaError:
        available = "(could not list them)"
    return ImageNotFound(
        f"Daytona snapshot {name!r} not found; available: {available} (set "
        "DAYTONA_DEV_TOOLS_SNAPSHOT_ID or execution.sandbox.daytona.snapshot; "
        "docs/sandbox/daytona-setup.md says how to push one)"
    )
