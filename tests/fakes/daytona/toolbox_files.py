"""The toolbox's file endpoints (``/files...``) in front of :mod:`files`.

``upload_files`` posts ``multipart/form-data`` to ``/files/bulk-upload`` with fields
``files[i].path`` and ``files[i].file`` (the daemon answers ``{"files": [...]}`` or 400
with ``{"errors": [...]}``); ``download_file(s)`` posts ``{"paths": [...]}`` to
``/files/bulk-download`` and parses the multipart answer; ``list_files``, ``get_file_info``,
``create_folder`` and ``delete_file`` are plain query-string calls.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tests.fakes.daytona import files
from tests.fakes.daytona.errors import DaemonError, UpstreamGone
from tests.fakes.daytona.runtime import Runtime


class FileRoutes:
    """Handlers taking (request, runtime), wrapped by the toolbox's gate."""

    async def list_files(self, request: web.Request, runtime: Runtime) -> web.StreamResponse:
        depth = int(request.query.get("depth") or 1)
        entries = await files.Files(runtime).list(request.query.get("path", ""), depth)
        return web.json_response(entries)

    async def file_info(self, request: web.Request, runtime: Runtime) -> web.StreamResponse:
        return web.json_response(await files.Files(runtime).info(request.query.get("path", "")))

    async def create_folder(self, request: web.Request, runtime: Runtime) -> web.StreamResponse:
        await files.Files(runtime).create_folder(
            request.query.get("path", ""), request.query.get("mode", "")
        )
        return web.Response(status=201)

    async def delete_file(self, request: web.Request, runtime: Runtime) -> web.StreamResponse:
        await files.Files(runtime).delete(
            request.query.get("path", ""), request.query.get("recursive") == "true"
        )
        return web.Response(status=204)

    async def download_one(self, request: web.Request, runtime: Runtime) -> web.StreamResponse:
        data = await files.Files(runtime).read(request.query.get("path", ""))
        return web.Response(body=data, content_type="application/octet-stream")

    async def bulk_download(self, request: web.Request, runtime: Runtime) -> web.StreamResponse:
        try:
            body = await request.json()
            paths = list(body["paths"])
        except (ValueError, KeyError, TypeError):
            paths = []
        if not paths:
            return web.json_response(
                {"error": 'request body must be {"paths": [ ... ]} and non-empty'}, status=400
            )
        response = web.StreamResponse(
            headers={"Content-Type": f"multipart/form-data; boundary={files.BOUNDARY}"}
        )
        await response.prepare(request)
        reader = files.Files(runtime)
        try:
            for path in paths:
                try:
                    part = files.file_part(path, await reader.read(path))
                except DaemonError as error:
                    part = files.error_part(path, error, request.method)
                await response.write(part)
        except UpstreamGone:
            if request.transport is not None:
                request.transport.abort()
            return response
        await response.write(files.closing())
        await response.write_eof()
        return response

    async def bulk_upload(self, request: web.Request, runtime: Runtime) -> web.StreamResponse:
        try:
            reader = await request.multipart()
        except (AssertionError, ValueError):
            return web.json_response({"errors": ["invalid multipart form"]}, status=400)
        writer = files.Files(runtime)
        destinations: dict[str, str] = {}
        errors: list[str] = []
        written: list[dict[str, Any]] = []
        while (part := await reader.next()) is not None:
            name = getattr(part, "name", None) or ""
            index = name.removeprefix("files[").removesuffix("].path").removesuffix("].file")
            data = await part.read()  # type: ignore[union-attr]
            if name.endswith(".path"):
                destination = bytes(data).decode().strip()
                if not destination:
                    errors.append(f"path[{index}]: empty path")
                    continue
                destinations[index] = destination
            elif name.endswith(".file"):
                destination = destinations.get(index, "")
                if not destination:
                    errors.append(f"file[{index}]: missing .path metadata")
                    continue
                failure = await writer.write(destination, bytes(data))
                if failure:
                    errors.append(failure)
                else:
                    written.append({"path": destination, "bytes": len(data)})
        if errors:
            return web.json_response({"errors": errors, "files": written}, status=400)
        return web.json_response({"files": written})
