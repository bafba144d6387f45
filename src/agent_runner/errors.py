"""Errors a user can act on.

Every error the runner raises on purpose derives from :class:`AgentRunnerError` and carries
one line that says what went wrong and what to do; the CLI prints that line and exits 2.
Some carry a few lines of evidence below it (``details``: pip's last lines for a failed
install), never a whole log. Anything else reaching the CLI is a bug.
"""

from __future__ import annotations

from collections.abc import Iterable


class AgentRunnerError(Exception):
    """Base of the errors whose message is meant for the user, as one line."""

    def __init__(self, message: str, details: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.details = tuple(details)
        """A few lines that back the message up (a tool's own last words), shown below it."""

    def __str__(self) -> str:
        return "\n".join([self.message, *(f"  {line}" for line in self.details)])


class InvalidSetting(AgentRunnerError):
    """A configuration value (flag, environment variable or file key) is not acceptable."""


class ConfigFileError(InvalidSetting):
    """The configuration file cannot be read or written."""


class ModeUnavailable(AgentRunnerError):
    """The requested execution mode cannot run on this installation."""


class WorkingDirectoryMissing(AgentRunnerError):
    """The directory a command should run in does not exist."""


class SessionClosed(AgentRunnerError):
    """A command was sent to a session that has already been closed."""


class SandboxUnavailable(AgentRunnerError):
    """The sandbox backend (engine, API, cluster) cannot be reached or refused the sandbox."""


class ImageNotFound(AgentRunnerError):
    """The sandbox image is not present and could not be pulled or built."""


class PullFailed(ImageNotFound):
    """A registry did not hand the image over; ``kind`` says why, for callers that branch."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind
        """``not-found``, ``unauthorized``, ``denied``, ``unreachable`` or ``failed``."""


class RequirementsError(AgentRunnerError):
    """A custom requirements file cannot be used: missing, not one pip takes, or its install
    failed; the message names the file."""


class MissingExtra(AgentRunnerError):
    """An optional dependency needed by the chosen backend is not installed."""


def first_line(error: BaseException) -> str:
    """The first line of an exception's text (docker-py's explanation when it has one)."""
    text = str(getattr(error, "explanation", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__
