"""read_file, write_file and list_files, through the session's shell.

Going through the shell means a file is read where the session's commands would read it: on
the host, or in the sandbox (a ``copy`` workspace too, which the host cannot see); in AUTO
mode the policy judges the command like any other (``cat > /etc/x`` goes to the sandbox).
Paths are quoted into the command text, never interpolated; relative paths start where
the session stands. The tools need GNU coreutils and findutils in that place (the sandbox
images have them).
"""

from __future__ import annotations

import posixpath
import shlex

from agent_runner.errors import AgentRunnerError, InvalidSetting
from agent_runner.mcp_server.models import FileContent, FileEntry, FileList, FileWritten
from agent_runner.mcp_server.sessions import Sessions
from agent_runner.results import ExecutionResult

READ_LIMIT = 256 * 1024
"""Bytes read_file returns at most, whatever ``limit_lines`` asks."""
MAX_ENTRIES = 10_000
KINDS = {"f": "file", "d": "dir", "l": "link"}


class FileError(AgentRunnerError):
    """The file operation failed in the session's place (the message is the shell's)."""


def _failed(result: ExecutionResult, what: str) -> FileError:
    detail = result.stderr.strip() or f"exit code {result.exit_code}"
    return FileError(f"{what}: {detail}")


class Files:
    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    async def _stdout(self, session_id: str, command: str, what: str) -> str:
        """``command``'s stdout, run in the session after its other commands; a failure is
        a :class:`FileError` with what the shell said."""
        slot = await self.sessions.get(session_id)
        async with slot.lock:
            result = await slot.session.run(command)
        if result.exit_code != 0:
            raise _failed(result, what)
        return result.stdout

    async def read(
        self, path: str, *, session_id: str, offset_line: int, limit_lines: int
    ) -> FileContent:
        if offset_line < 1 or limit_lines < 1:
            raise InvalidSetting("offset_line and limit_lines start at 1")
        quoted = shlex.quote(path)
        last = offset_line + limit_lines - 1
        command = (
            f"[ -f {quoted} ] || {{ printf 'not a readable file: %s\\n' {quoted} >&2; exit 3; }}\n"
            f"awk 'END {{ print NR }}' < {quoted} &&\n"
            f"sed -n '{offset_line},{last}p;{last}q' < {quoted} | head -c {READ_LIMIT + 1}"
        )
        stdout = await self._stdout(session_id, command, f"read_file {path}")
        total_text, _, content = stdout.partition("\n")
        total = int(total_text)
        cut = len(content.encode()) > READ_LIMIT
        if cut:
            content = content.encode()[:READ_LIMIT].decode("utf-8", "ignore")
        lines = content.count("\n") + (1 if content and not content.endswith("\n") else 0)
        return FileContent(
            path=path,
            content=content,
            offset_line=offset_line,
            lines=lines,
            total_lines=total,
            truncated=cut or offset_line + lines - 1 < total,
        )

    async def write(self, path: str, content: str, *, session_id: str, append: bool) -> FileWritten:
        slot = await self.sessions.get(session_id)
        quoted = shlex.quote(path)
        redirect = ">>" if append else ">"
        # The parent is worked out here, not with $(dirname): AUTO must see the literal paths.
        parent = posixpath.dirname(path)
        mkdir = f"mkdir -p -- {shlex.quote(parent)} && " if parent else ""
        command = f"{mkdir}cat {redirect} {quoted} && realpath -m -- {quoted}"
        async with slot.lock:
            process = await slot.session.start(command, stdin=True)
            try:
                await process.write(content.encode())
                await process.close_stdin()
                code = await process.wait()
            finally:
                slot.session.discard(process.id)
        if code != 0:
            error = process.read(stream="stderr").data.decode("utf-8", "replace").strip()
            raise FileError(f"write_file {path}: {error or f'exit code {code}'}")
        return FileWritten(
            path=process.read().data.decode().strip(),
            bytes_written=len(content.encode()),
            appended=append,
        )

    async def list(self, path: str, *, session_id: str, depth: int, max_entries: int) -> FileList:
        if depth < 1 or not 1 <= max_entries <= MAX_ENTRIES:
            raise InvalidSetting(f"depth starts at 1; max_entries is 1 to {MAX_ENTRIES}")
        command = (
            f"cd -- {shlex.quote(path)} && pwd && "
            f"find . -mindepth 1 -maxdepth {depth} -printf '%y\\t%s\\t%P\\0' "
            f"| LC_ALL=C sort -z -t \"$(printf '\\t')\" -k3 | head -z -n {max_entries + 1}"
        )
        stdout = await self._stdout(session_id, command, f"list_files {path}")
        where, _, listing = stdout.partition("\n")
        entries = []
        for item in filter(None, listing.split("\0")):
            kind, size, name = item.split("\t", 2)
            entries.append(FileEntry(path=name, type=KINDS.get(kind, "other"), size=int(size)))
        return FileList(
            path=where,
            entries=entries[:max_entries],
            truncated=len(entries) > max_entries,
        )
