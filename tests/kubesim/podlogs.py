"""pods/log: a container instance's output file served as text/plain, optionally followed.

Which instance, as the real kubelet picks it from the container's status: the running one,
else the terminated one, else (waiting to restart) the one of lastState; `previous=true`: the
one of lastState.terminated (during a crash-loop back-off that is the newest, dead, instance:
the same as without `previous`, as on a real cluster). Errors are the kubelet's: `previous
terminated container "c" in pod "p" not found`, `container "c" in pod "p" is waiting to start:
ContainerCreating`.

`follow` streams one instance: it ends when that instance ends (also when the container is
then restarted: as `kubectl logs -f` on a real cluster, the new instance's output is not
followed). The kubelet keeps plain output (no per-line times), so `timestamps` and
`sinceSeconds` are accepted and ignored.
"""

from __future__ import annotations

import asyncio
import dataclasses
import pathlib
from collections.abc import Callable

from aiohttp import web

from . import errors

CHUNK = 64 * 1024
FOLLOW_POLL_SECONDS = 0.2


@dataclasses.dataclass(frozen=True)
class LogOptions:
    follow: bool
    tail_lines: int | None  # None: everything


def container_status(pod: dict, container: str) -> dict | None:
    status = pod.get("status") or {}
    for s in (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or []):
        if s.get("name") == container:
            return s
    return None


def logged_instance(pod: dict, container: str, previous: bool) -> str:
    """The containerID whose output a log request gets; raises ApiError(400) worded as the kubelet's
    validateContainerLogStatus."""
    name = pod["metadata"]["name"]
    status = container_status(pod, container)
    if status is None:
        raise errors.bad_request(f'container "{container}" in pod "{name}" is not available')
    last = (status.get("lastState") or {}).get("terminated") or {}
    state = status.get("state") or {}
    if previous:
        if not last.get("containerID"):
            raise errors.bad_request(f'previous terminated container "{container}" in pod "{name}" not found')
        return last["containerID"]
    if "running" in state:
        return status.get("containerID", "")
    found = (state.get("terminated") or {}).get("containerID") or last.get("containerID")
    if found:
        return found
    if "terminated" in state or last:
        raise errors.bad_request(f'container "{container}" in pod "{name}" is terminated')
    reason = (state.get("waiting") or {}).get("reason", "")
    raise errors.bad_request(
        f'container "{container}" in pod "{name}" is waiting to start: {reason}'
        if reason
        else f'container "{container}" in pod "{name}" is waiting to start - no logs yet'
    )


async def serve_log(
    request: web.Request, path: pathlib.Path, options: LogOptions, still_writing: Callable[[], bool]
) -> web.StreamResponse:
    """Streams the file; when following, keeps sending what is appended while still_writing()."""
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    await response.prepare(request)
    offset = _tail_offset(path, options.tail_lines)
    try:
        while True:
            offset = await _send_from(response, path, offset)
            if not options.follow or not still_writing() or _client_gone(request):
                break
            await asyncio.sleep(FOLLOW_POLL_SECONDS)
        await _send_from(response, path, offset)  # what was written just before the container ended
        await response.write_eof()
    except ConnectionError:
        pass  # the client left
    return response


async def _send_from(response: web.StreamResponse, path: pathlib.Path, offset: int) -> int:
    try:
        with path.open("rb") as log_file:
            log_file.seek(offset)
            while chunk := log_file.read(CHUNK):
                await response.write(chunk)
                offset += len(chunk)
    except FileNotFoundError:
        pass
    return offset


def _client_gone(request: web.Request) -> bool:
    return request.transport is None or request.transport.is_closing()


def _tail_offset(path: pathlib.Path, lines: int | None) -> int:
    """Offset of the start of the last `lines` lines (a final line without newline counts)."""
    if lines is None:
        return 0
    try:
        log_file = path.open("rb")
    except FileNotFoundError:
        return 0
    with log_file:
        end = log_file.seek(0, 2)
        if lines <= 0:
            return end
        position, newlines = end, 0
        last_byte_is_newline = end > 0 and _byte_at(log_file, end - 1) == b"\n"
        needed = lines + 1 if last_byte_is_newline else lines  # the newline ending the last line
        while position > 0:
            start = max(0, position - CHUNK)
            log_file.seek(start)
            block = log_file.read(position - start)
            for index in range(len(block) - 1, -1, -1):
                if block[index] == 0x0A:
                    newlines += 1
                    if newlines == needed:
                        return start + index + 1
            position = start
        return 0


def _byte_at(log_file, offset: int) -> bytes:
    log_file.seek(offset)
    return log_file.read(1)
