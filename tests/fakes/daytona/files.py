"""Toolbox file operations, done as the sandbox user inside the container.

The daemon runs as the sandbox user and touches the filesystem directly
(``apps/daemon/pkg/toolbox/fs``), so permissions are the user's and relative paths start
at the daemon's working directory. The emulator gets the same by running small shell
snippets as that user in that directory (``docker exec -u``): ``cat`` in and out for
contents, ``stat -L`` for metadata (``os.Stat`` follows links), ``mkdir -p`` and ``rm``.

The errors are the daemon's: ``FILE_NOT_FOUND`` (404), ``FILE_ACCESS_DENIED`` (403),
``INVALID_FILE_PATH`` (400) and, for a directory deleted without ``recursive``, a plain
400. A bulk download answers ``multipart/form-data`` with boundary
``DAYTONA-FILE-BOUNDARY``, one ``file`` part per path (or an ``error`` part carrying the
JSON error), each named by the requested path in ``filename`` and ``filename*``.
"""

from __future__ import annotations

import mimetypes
import posixpath
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from tests.fakes.daytona.errors import DaemonError, now_iso

if TYPE_CHECKING:
    from tests.fakes.daytona.runtime import Runtime

BOUNDARY = "DAYTONA-FILE-BOUNDARY"
_STAT_FORMAT = "%s|%a|%A|%u|%g|%y|%n"
_MISSING, _DIRECTORY, _DENIED = 3, 4, 5

_READ = r"""
[ -e "$1" ] || exit 3
[ -d "$1" ] && exit 4
[ -r "$1" ] || exit 5
exec cat -- "$1"
"""
_WRITE = r"""
parent=$(dirname -- "$1")
mkdir -p -- "$parent" 2>&1 || exit 1
cat > "$1"
"""
_STAT = rf"""
[ -e "$1" ] || exit 3
exec stat -L -c '{_STAT_FORMAT}' -- "$1"
"""
_LIST = rf"""
[ -e "$1" ] || exit 3
[ -d "$1" ] || exit 4
[ -r "$1" ] && [ -x "$1" ] || exit 5
find "$1" -mindepth 1 -maxdepth "$2" -exec stat -L -c '{_STAT_FORMAT}' -- {{}} + 2>/dev/null
exit 0
"""
_DELETE = r"""
[ -e "$1" ] || [ -L "$1" ] || exit 3
if [ -d "$1" ] && [ "$2" != true ]; then exit 4; fi
if [ "$2" = true ]; then rm -rf -- "$1"; else rm -f -- "$1"; fi
"""


def _go_time(stat_time: str) -> tuple[str, str]:
    """``stat %y`` -> (Go ``time.String()``, RFC 3339): the daemon's modTime and modifiedAt."""
    date, clock, offset = stat_time.split()
    seconds, _, fraction = clock.partition(".")
    fraction = fraction.rstrip("0")
    dotted = f".{fraction}" if fraction else ""
    zone = "UTC" if offset == "+0000" else offset
    rfc_offset = "Z" if offset == "+0000" else f"{offset[:3]}:{offset[3:]}"
    return f"{date} {seconds}{dotted} {offset} {zone}", f"{date}T{seconds}{dotted}{rfc_offset}"


def _file_info(line: str) -> dict[str, Any]:
    size, perm, mode, uid, gid, mtime, name = line.split("|", 6)
    go_time, rfc_time = _go_time(mtime)
    return {
        "name": posixpath.basename(name.rstrip("/")) or name,
        "path": posixpath.normpath(name),
        "size": int(size),
        "mode": mode,
        "modTime": go_time,
        "modifiedAt": rfc_time,
        "isDir": mode.startswith("d"),
        "owner": uid,
        "group": gid,
        "permissions": perm.rjust(4, "0"),
    }


class Files:
    """File operations on one running sandbox."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    async def _sh(
        self, script: str, *args: str, stdin: bytes | None = None
    ) -> tuple[int, bytes, bytes]:
        identity = self._runtime.identity
        return await self._runtime.guard(
            self._runtime.containers.run(
                self._runtime.container.id,
                ["/bin/sh", "-c", script, "toolbox", *args],
                user=identity.spec,
                workdir=identity.workdir,
                stdin=stdin,
            )
        )

    async def read(self, path: str) -> bytes:
        if not path:
            raise DaemonError(400, "invalid file path: path is empty", "INVALID_FILE_PATH")
        code, out, err = await self._sh(_READ, path)
        if code == _MISSING:
            raise DaemonError(404, f"file not found: {path}", "FILE_NOT_FOUND")
        if code == _DIRECTORY:
            raise DaemonError(
                400, f"invalid file path: path points to a directory: {path}", "INVALID_FILE_PATH"
            )
        if code == _DENIED:
            raise DaemonError(403, f"permission denied: {path}", "FILE_ACCESS_DENIED")
        if code != 0:
            raise DaemonError(
                500, f"failed to access file: {err.decode(errors='replace')}", "FILE_READ_FAILED"
            )
        return out

    async def write(self, path: str, data: bytes) -> str | None:
        """Write one file; the daemon's per-file error text, or ``None``."""
        code, out, err = await self._sh(_WRITE, path, stdin=data)
        if code != 0:
            detail = (err or out).decode(errors="replace").strip().splitlines()
            return f"{path}: create: {detail[-1] if detail else 'failed'}"
        return None

    async def info(self, path: str) -> dict[str, Any]:
        if not path:
            raise DaemonError(400, "path is required")
        code, out, err = await self._sh(_STAT, path)
        self._raise_for(code, path, err)
        return _file_info(out.decode().strip())

    async def list(self, path: str, depth: int) -> list[dict[str, Any]]:
        code, out, err = await self._sh(_LIST, path or ".", str(max(depth, 1)))
        self._raise_for(code, path, err)
        lines = [line for line in out.decode(errors="replace").splitlines() if line]
        return [
            _file_info(line) for line in sorted(lines, key=lambda line: line.rsplit("|", 1)[-1])
        ]

    async def create_folder(self, path: str, mode: str) -> None:
        if not path:
            raise DaemonError(400, "path is required")
        try:
            int(mode or "755", 8)
        except ValueError:
            raise DaemonError(400, "invalid mode format") from None
        code, _, err = await self._sh('mkdir -p -m "$2" -- "$1"', path, mode or "755")
        if code != 0:
            raise DaemonError(400, err.decode(errors="replace").strip())

    async def delete(self, path: str, recursive: bool) -> None:
        if not path:
            raise DaemonError(400, "path is required")
        code, _, err = await self._sh(_DELETE, path, "true" if recursive else "false")
        if code == _MISSING:
            raise DaemonError(404, f"file not found: {path}", "FILE_NOT_FOUND")
        if code == _DIRECTORY:
            raise DaemonError(400, "cannot delete directory without recursive flag")
        if code != 0:
            message = err.decode(errors="replace").strip()
            if "ermission denied" in message:
                raise DaemonError(403, f"permission denied: {path}", "FILE_ACCESS_DENIED")
            raise DaemonError(400, message)

    @staticmethod
    def _raise_for(code: int, path: str, err: bytes) -> None:
        if code == 0:
            return
        if code == _MISSING:
            raise DaemonError(404, f"file not found: {path}", "FILE_NOT_FOUND")
        if code == _DIRECTORY:
            raise DaemonError(
                400, f"invalid file path: not a directory: {path}", "INVALID_FILE_PATH"
            )
        if code == _DENIED:
            raise DaemonError(403, f"permission denied: {path}", "FILE_ACCESS_DENIED")
        raise DaemonError(400, err.decode(errors="replace").strip())


def multipart_part(name: str, path: str, body: bytes, content_type: str) -> bytes:
    """One part of a bulk-download answer (``multipartContentDisposition``)."""
    latin = path.replace("\\", "\\\\").replace('"', '\\"')
    latin = "".join(c if 0x20 <= ord(c) <= 0xFF and ord(c) != 0x7F else "_" for c in latin)
    headers = [
        f'Content-Disposition: form-data; name="{name}"; filename="{latin}"; '
        f"filename*=utf-8''{quote(path, safe='')}",
        f"Content-Type: {content_type}",
    ]
    if name == "file":
        headers.append(f"Content-Length: {len(body)}")
    head = f"--{BOUNDARY}\r\n" + "\r\n".join(headers) + "\r\n\r\n"
    return head.encode("latin-1", errors="replace") + body + b"\r\n"


def file_part(path: str, data: bytes) -> bytes:
    content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
    return multipart_part("file", path, data, content_type)


def error_part(path: str, error: DaemonError, method: str) -> bytes:
    import json

    payload = {
        "statusCode": error.status,
        "message": error.message,
        "code": error.code,
        "source": error.source,
        "timestamp": now_iso(),
        "path": path,
        "method": method,
    }
    return multipart_part(
        "error", path, json.dumps(payload).encode(), "application/json; charset=utf-8"
    )


def closing() -> bytes:
    return f"--{BOUNDARY}--\r\n".encode()
