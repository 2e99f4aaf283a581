"""pods/exec over a `v5.channel.k8s.io` websocket.

Every binary message starts with a channel byte: 0 stdin (client -> server), 1 stdout,
2 stderr, 3 the final Status (once), 4 terminal resize; `FF <channel>` closes a channel
(kubectl sends `FF 00` at stdin EOF). After the Status the server closes the websocket at once:
kubectl waits for that close.

tty=true runs the command on plain pipes (no pseudo-terminal) with stderr merged into stdout;
resize messages are ignored.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import subprocess

from aiohttp import WSMsgType, web

from .faults import Faults, Pace

PROTOCOL = "v5.channel.k8s.io"
STDIN, STDOUT, STDERR, STATUS, RESIZE, CLOSE = 0, 1, 2, 3, 4, 0xFF
MAX_CHUNK = 32 * 1024
_WEBSOCKET_ENDED = (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR)


@dataclasses.dataclass(frozen=True)
class ExecOptions:
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool


def success_status() -> dict:
    return {"metadata": {}, "status": "Success"}


def exit_code_status(code: int) -> dict:
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: exit code {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def internal_error_status(message: str) -> dict:
    return {"metadata": {}, "status": "Failure", "message": message, "reason": "InternalError", "code": 500}


async def finish_with_status(ws: web.WebSocketResponse, status: dict) -> None:
    """Sends the Status on channel 3 and closes (1000) at once, as kubectl expects."""
    try:
        await ws.send_bytes(bytes([STATUS]) + json.dumps(status).encode())
        await ws.close()
    except ConnectionError:
        pass


async def run_exec(
    ws: web.WebSocketResponse, argv: list[str], options: ExecOptions, faults: Faults | None = None
) -> None:
    """Runs argv, streams its stdio over ws and ends with its exit Status (paced as faults say)."""
    faults = faults or Faults()
    try:
        process = await _spawn(argv, options)
    except OSError as error:
        await finish_with_status(ws, internal_error_status(f"failed to exec in container: {error}"))
        return
    client = asyncio.create_task(_pump_client_to_stdin(ws, process, Pace(faults)))
    command = asyncio.create_task(_pump_output_until_exit(ws, process, Pace(faults)))
    try:
        await asyncio.wait({client, command}, return_when=asyncio.FIRST_COMPLETED)
        if command.done():
            client.cancel()
            await finish_with_status(ws, _status_for(command.result()))
    except ConnectionError:
        pass  # the client went away mid-stream: the process is killed below
    finally:
        client.cancel()
        command.cancel()
        await _kill_if_running(process)


async def _spawn(argv: list[str], options: ExecOptions) -> asyncio.subprocess.Process:
    if options.tty:
        stderr = subprocess.STDOUT if options.stdout else subprocess.DEVNULL
    else:
        stderr = _pipe_if(options.stderr)
    return await asyncio.create_subprocess_exec(
        *argv,
        stdin=_pipe_if(options.stdin),
        stdout=_pipe_if(options.stdout),
        stderr=stderr,
        start_new_session=True,
    )  # its own process group, so an abandoned exec is killed whole


def _pipe_if(wanted: bool) -> int:
    return subprocess.PIPE if wanted else subprocess.DEVNULL


def _status_for(returncode: int) -> dict:
    if returncode == 0:
        return success_status()
    # Killed by a signal: the runtime reports 128 + signal like a shell does.
    return exit_code_status(returncode if returncode > 0 else 128 - returncode)


async def _pump_output_until_exit(ws: web.WebSocketResponse, process, pace: Pace) -> int:
    pumps = [
        _pump_output(ws, stream, channel, pace)
        for stream, channel in ((process.stdout, STDOUT), (process.stderr, STDERR))
        if stream is not None
    ]
    await asyncio.gather(*pumps)
    return await process.wait()


async def _pump_output(
    ws: web.WebSocketResponse, stream: asyncio.StreamReader, channel: int, pace: Pace
) -> None:
    prefix = bytes([channel])
    while chunk := await stream.read(MAX_CHUNK):
        await pace(len(chunk))
        await ws.send_bytes(prefix + chunk)  # awaits the socket's drain: bounded memory


async def _pump_client_to_stdin(ws: web.WebSocketResponse, process, pace: Pace) -> None:
    """Reads the websocket until it ends; feeds channel 0 to stdin, one drained message at a time.

    Returns only when the client went away. Reading continues after stdin EOF so that aiohttp
    keeps answering kubectl's pings.
    """
    stdin = process.stdin
    while True:
        message = await ws.receive()
        if message.type in _WEBSOCKET_ENDED:
            return
        if message.type != WSMsgType.BINARY or not message.data:
            continue
        channel, payload = message.data[0], message.data[1:]
        if channel == STDIN and stdin is not None:
            await pace(len(payload))
            if not await _write_stdin(stdin, payload):
                stdin = None
        elif channel == CLOSE and payload[:1] == bytes([STDIN]) and stdin is not None:
            stdin.close()
            stdin = None


async def _write_stdin(stdin: asyncio.StreamWriter, data: bytes) -> bool:
    """False once the process stopped reading its stdin; later input is dropped."""
    try:
        stdin.write(data)
        await stdin.drain()
        return True
    except (BrokenPipeError, ConnectionResetError):
        return False


async def _kill_if_running(process) -> None:
    if process.returncode is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        await process.wait()
