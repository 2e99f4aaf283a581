"""pods/portforward: a SPDY/3.1 session tunnelled through one websocket, like the kubelet's.

kubectl opens ONE websocket per `kubectl port-forward` and, per local connection, two SPDY
streams sharing a `requestid` header: an error stream (kubectl only reads it: any bytes there
make kubectl print them and give up the whole forward) and a data stream (the TCP payload).
Each pair is spliced to a TCP connection opened inside the pod's network namespace.

Backpressure: the reader awaits the pod-side writer's drain before it reads the next websocket
message, and pod-side reads await the websocket's drain, so memory stays bounded.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import logging
import os

from aiohttp import WSMsgType, web

from tests.kubesim import spdy
from tests.kubesim.faults import Pace

PROTOCOL = "SPDY/3.1+portforward.k8s.io"
MAX_DATA_FRAME = 32 * 1024

log = logging.getLogger(__name__)


class PortForwardSession:
    """Serves one kubectl port-forward websocket until either side goes away."""

    def __init__(self, ws: web.WebSocketResponse, runtime, pod_uid: str, faults) -> None:
        self._ws = ws
        self._runtime = runtime
        self._pod_uid = pod_uid
        self._faults = faults
        self._frames = spdy.FrameReader()
        self._compressor = spdy.HeaderCompressor()
        self._decompressor = spdy.HeaderDecompressor()
        self._send_lock = asyncio.Lock()
        self._requests: dict[str, _Request] = {}
        self._request_of_stream: dict[int, _Request] = {}
        self._last_stream_id = 0

    async def run(self, pod_gone: asyncio.Event) -> None:
        """Serves frames until the websocket closes, or tears the session down when the pod goes."""
        reader = asyncio.create_task(self._read_frames())
        gone = asyncio.create_task(pod_gone.wait())
        try:
            await asyncio.wait({reader, gone}, return_when=asyncio.FIRST_COMPLETED)
            if gone.done():
                reader.cancel()
                await self._say_goodbye()
        finally:
            reader.cancel()
            gone.cancel()
            await self._close_connections()

    async def send(self, frame: bytes) -> None:
        async with self._send_lock:
            await self._ws.send_bytes(frame)

    async def _read_frames(self) -> None:
        try:
            while True:
                message = await self._ws.receive()
                if message.type != WSMsgType.BINARY:
                    if message.type in (
                        WSMsgType.CLOSE,
                        WSMsgType.CLOSING,
                        WSMsgType.CLOSED,
                        WSMsgType.ERROR,
                    ):
                        return
                    continue
                for frame in self._frames.feed(message.data):
                    await self._dispatch(frame)
        except spdy.ProtocolError as error:
            log.warning("port-forward: %s", error)
            await self._say_goodbye(spdy.RST_PROTOCOL_ERROR, spdy.GOAWAY_PROTOCOL_ERROR)
        except ConnectionError:
            return

    async def _dispatch(self, frame: spdy.DataFrame | spdy.ControlFrame) -> None:
        if isinstance(frame, spdy.DataFrame):
            request = self._request_of_stream.get(frame.stream_id)
            if (
                request is not None
                and request.connection is not None
                and frame.stream_id == request.data_stream
            ):
                await request.connection.deliver(frame.data, frame.fin)
        elif frame.type == spdy.SYN_STREAM:
            await self._open_stream(frame)
        elif frame.type == spdy.PING:
            await self.send(spdy.ping_frame(spdy.ping_id(frame)))
        elif frame.type == spdy.RST_STREAM:
            request = self._request_of_stream.get(frame.stream_id)
            if request is not None and request.connection is not None:
                request.connection.abort()
        # SETTINGS, WINDOW_UPDATE, HEADERS and GOAWAY need no answer: kubectl closes the websocket.

    async def _open_stream(self, frame: spdy.ControlFrame) -> None:
        stream_id = frame.stream_id
        self._last_stream_id = max(self._last_stream_id, stream_id)
        headers = self._decompressor.decode(spdy.syn_stream_header_block(frame))
        async with self._send_lock:  # the header compressor's state must follow wire order
            await self._ws.send_bytes(spdy.syn_reply_frame(stream_id, self._compressor.encode({})))
        request_id = headers.get("requestid", str(stream_id))
        request = self._requests.setdefault(request_id, _Request(headers.get("port", "")))
        if headers.get("streamtype") == "error":
            request.error_stream = stream_id
        elif headers.get("streamtype") == "data":
            request.data_stream = stream_id
        else:
            await self.send(spdy.rst_stream_frame(stream_id, spdy.RST_PROTOCOL_ERROR))
            return
        self._request_of_stream[stream_id] = request
        if request.error_stream is not None and request.data_stream is not None:
            del self._requests[request_id]
            request.connection = ForwardedConnection(self, request)
            request.connection.start()

    async def _say_goodbye(
        self, reset_status: int = spdy.RST_CANCEL, goaway_status: int = spdy.GOAWAY_OK
    ) -> None:
        try:
            for stream_id in sorted(self._request_of_stream):
                await self.send(spdy.rst_stream_frame(stream_id, reset_status))
            await self.send(spdy.goaway_frame(self._last_stream_id, goaway_status))
            await self._ws.close()
        except ConnectionError:
            pass

    async def _close_connections(self) -> None:
        connections = {r.connection for r in self._request_of_stream.values() if r.connection is not None}
        for connection in connections:
            connection.abort()
        await asyncio.gather(*(c.finished() for c in connections), return_exceptions=True)

    def forget(self, request: _Request) -> None:
        for stream_id in (request.error_stream, request.data_stream):
            self._request_of_stream.pop(stream_id, None)

    def cut_after_bytes(self) -> int | None:
        return self._faults.portforward_cut_after

    async def connect(self, port: int):
        return await self._runtime.open_connection(port)

    def connect_error_message(self, port: int, error: OSError) -> str:
        """What the kubelet (containerd) writes on the error stream when the pod port is closed."""
        reason = os.strerror(error.errno).lower() if error.errno else str(error)
        return (
            f"error forwarding port {port} to pod {self._pod_uid}, uid : failed to connect to "
            f'localhost:{port} inside namespace "{self._pod_uid}", IPv4: dial tcp4 '
            f"127.0.0.1:{port}: connect: {reason}"
        )


@dataclasses.dataclass(eq=False)
class _Request:
    """One kubectl-side connection: its error and data streams, paired by requestid."""

    port: str
    error_stream: int | None = None
    data_stream: int | None = None
    connection: ForwardedConnection | None = None


class ForwardedConnection:
    """Splices a request's data stream to a TCP connection to the port inside the pod."""

    def __init__(self, session: PortForwardSession, request: _Request) -> None:
        self._session = session
        self._request = request
        self._connected = asyncio.get_running_loop().create_future()
        self._writer: asyncio.StreamWriter | None = None
        self._client_done = False
        self._pod_done = False
        self._task: asyncio.Task | None = None
        self._bytes_moved = 0
        self._pace_in = Pace(session._faults)  # a slow link (fault injection), each way
        self._pace_out = Pace(session._faults)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def finished(self) -> None:
        if self._task is not None:
            await asyncio.wait({self._task})

    async def deliver(self, data: bytes, fin: bool) -> None:
        """Client -> pod. Waits for the pod-side connection and for it to drain (backpressure)."""
        if not await asyncio.shield(self._connected) or self._client_done:
            return
        data = self._within_cut_budget(data)
        try:
            if data:
                await self._pace_in(len(data))
                self._writer.write(data)
                await self._writer.drain()
            if fin:
                self._client_done = True
                if self._writer.can_write_eof():
                    self._writer.write_eof()
        except ConnectionError:
            self._client_done = True
        if self._bytes_moved_past_cut():
            await self._cut()
        self._close_when_both_done()

    def abort(self) -> None:
        """The stream was reset or the session ended: drop the pod-side connection."""
        self._client_done = self._pod_done = True
        if self._writer is not None:
            self._writer.transport.abort()
        if not self._connected.done():
            self._connected.set_result(False)
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()

    async def _run(self) -> None:
        try:
            reader = await self._open()
            if reader is not None:
                await self._pump_pod_to_client(reader)
        except ConnectionError:  # the websocket is gone
            self.abort()
        finally:
            if not self._connected.done():
                self._connected.set_result(False)

    async def _open(self) -> asyncio.StreamReader | None:
        port = _parse_port(self._request.port)
        try:
            if port is None:
                raise OSError(errno.EINVAL, f"invalid port {self._request.port!r}")
            reader, self._writer = await self._session.connect(port)
        except OSError as error:
            self._client_done = self._pod_done = True
            message = self._session.connect_error_message(port or 0, error)
            await self._session.send(spdy.data_frame(self._request.error_stream, message.encode()))
            await self._finish_streams()
            return None
        self._connected.set_result(True)
        return reader

    async def _pump_pod_to_client(self, reader: asyncio.StreamReader) -> None:
        data_stream = self._request.data_stream
        while not self._pod_done:
            try:
                received = await reader.read(MAX_DATA_FRAME)
            except OSError:  # reset by the pod side: ends the connection like an EOF
                received = b""
            if not received:
                break
            if chunk := self._within_cut_budget(received):
                await self._pace_out(len(chunk))
                await self._session.send(spdy.data_frame(data_stream, chunk))
            if self._bytes_moved_past_cut():
                await self._cut()
                return
        if not self._pod_done:
            self._pod_done = True
            await self._finish_streams()
        self._close_when_both_done()

    async def _finish_streams(self) -> None:
        """FIN the data stream, then the error stream empty: kubectl then closes its local socket."""
        await self._session.send(spdy.data_frame(self._request.data_stream, b"", fin=True))
        await self._session.send(spdy.data_frame(self._request.error_stream, b"", fin=True))

    def _within_cut_budget(self, data: bytes) -> bytes:
        limit = self._session.cut_after_bytes()
        if limit is not None:
            data = data[: max(0, limit - self._bytes_moved)]
        self._bytes_moved += len(data)
        return data

    def _bytes_moved_past_cut(self) -> bool:
        limit = self._session.cut_after_bytes()
        return limit is not None and self._bytes_moved >= limit

    async def _cut(self) -> None:
        """Fault injection: drop both sides as a network failure would. Resetting both streams
        makes kubectl close its local socket; the forward itself lives on."""
        log.info(
            "port-forward: cutting a connection to port %s after %d bytes",
            self._request.port,
            self._bytes_moved,
        )
        self._session.forget(self._request)
        self.abort()
        for stream_id in (self._request.data_stream, self._request.error_stream):
            await self._session.send(spdy.rst_stream_frame(stream_id, spdy.RST_CANCEL))

    def _close_when_both_done(self) -> None:
        if self._client_done and self._pod_done:
            self._session.forget(self._request)
            if self._writer is not None:
                self._writer.close()


def _parse_port(text: str) -> int | None:
    return int(text) if text.isdigit() and 0 < int(text) < 65536 else None
