"""What the tools return: one pydantic model each, so clients get ``outputSchema`` and
``structuredContent``; each also renders the short text a model reads (:meth:`text`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["running", "exited", "timed_out", "killed", "failed"]


class Result(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    def text(self) -> str:
        return self.model_dump_json(exclude_none=True)


class CommandOutput(Result):
    """A command's state and a page of its output (run_command, read_output, write_stdin)."""

    status: Status
    """running, exited, timed_out, killed (kill_process or its session closed) or failed."""
    exit_code: int | None = None
    """Its exit code once it ended (124 after a timeout, 128+N after signal N)."""
    stdout: str = ""
    """Output from ``cursor`` on, at most max_output_bytes (with stderr), as UTF-8."""
    stderr: str = ""
    truncated: bool = False
    """More output exists than this reply carries: page on with read_output(cursor)."""
    dropped: int = 0
    """Bytes between the cursor and this page that the runner's buffer no longer holds."""
    cursor: str
    """Where the next read_output continues (opaque: stdout and stderr offsets)."""
    process_id: str | None = None
    """Set while it runs, or while output is left to page: pass it to read_output,
    write_stdin and kill_process."""
    mode: Literal["local", "sandbox"]
    """Where it runs: on the host (local) or in the session's sandbox."""
    backend: str
    reason: str | None = None
    """Why AUTO mode chose that place."""
    duration_s: float
    cwd_after: str | None = None
    """Where the session stands now, in the place the command ran (its next command's cwd)."""

    def text(self) -> str:
        if self.status == "running":
            head = f"running as {self.process_id} for {self.duration_s:.1f} s ({self.mode})"
        else:
            head = f"{self.status}, exit code {self.exit_code} in {self.duration_s:.2f} s"
            head += f" ({self.mode})"
        if self.reason:
            head += f"; auto: {self.reason}"
        parts = [head]
        if self.stdout:
            parts.append(self.stdout.rstrip("\n"))
        if self.stderr:
            parts.append("[stderr]\n" + self.stderr.rstrip("\n"))
        if self.truncated:
            parts.append(f"[more output: read_output({self.process_id!r}, cursor={self.cursor!r})]")
        return "\n".join(parts)


class ProcessInfo(Result):
    """One process a session started."""

    process_id: str
    session_id: str
    command: str
    status: Status
    exit_code: int | None = None
    mode: Literal["local", "sandbox"]
    backend: str
    stdin_open: bool
    """write_stdin still reaches it."""
    duration_s: float
    stdout_bytes: int
    """Output it has produced so far (kept or not)."""
    stderr_bytes: int


class ProcessList(Result):
    processes: list[ProcessInfo]

    def text(self) -> str:
        if not self.processes:
            return "no processes"
        return "\n".join(
            f"{p.process_id} {p.session_id} {p.status}"
            + (f" {p.exit_code}" if p.exit_code is not None else "")
            + f" {p.command[:80]!r}"
            for p in self.processes
        )


class Explanation(Result):
    """Where AUTO mode would run a command, and why; nothing runs."""

    mode: Literal["local", "sandbox"]
    reason: str
    rule: str
    """The rule that decided: package-install, privilege, default, ..."""
    trigger: str | None = None
    """The part of the command that triggered the rule."""

    def text(self) -> str:
        return f"auto -> {self.mode}: {self.reason}"


class FileContent(Result):
    """Lines of a file, read in the session's place."""

    path: str
    content: str
    offset_line: int
    """The first line returned (1-based)."""
    lines: int
    """Lines returned."""
    total_lines: int
    truncated: bool
    """Lines after these exist (or the byte limit cut the last one)."""

    def text(self) -> str:
        note = f"[{self.path}: lines {self.offset_line}-{self.offset_line + self.lines - 1}"
        note += f" of {self.total_lines}]"
        return f"{self.content}\n{note}" if self.content else note


class FileWritten(Result):
    path: str
    """The file's absolute path in the session's place."""
    bytes_written: int
    appended: bool

    def text(self) -> str:
        verb = "appended" if self.appended else "wrote"
        return f"{verb} {self.bytes_written} bytes to {self.path}"


class FileEntry(BaseModel):
    path: str
    """Relative to the listed directory."""
    type: Literal["file", "dir", "link", "other"]
    size: int


class FileList(Result):
    path: str
    """The listed directory, absolute, in the session's place."""
    entries: list[FileEntry]
    truncated: bool
    """More entries exist than max_entries."""

    def text(self) -> str:
        lines = [f"{e.path}/" if e.type == "dir" else e.path for e in self.entries]
        if self.truncated:
            lines.append(f"[more entries than {len(self.entries)}]")
        return "\n".join(lines) or "(empty)"


class PlaceInfo(BaseModel):
    mode: Literal["local", "sandbox"]
    cwd: str
    sandbox_id: str | None = None


class SessionInfo(Result):
    session_id: str
    open: bool
    """False until a tool first uses the session (or after close_session)."""
    mode: Literal["local", "sandbox", "auto"]
    places: list[PlaceInfo] = Field(default_factory=list)
    """The shells it has open: the host, the sandbox, or (auto) both."""
    running_processes: int = 0
    max_processes: int


class SessionClosedResult(Result):
    session_id: str
    closed: bool
    """False when no such session was open."""
    processes_killed: int = 0

    def text(self) -> str:
        if not self.closed:
            return f"no session {self.session_id!r} was open"
        return f"closed {self.session_id!r}; {self.processes_killed} processes killed"
