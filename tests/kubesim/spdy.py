"""SPDY/3.1 framing: the subset kubectl port-forward speaks (tunnelled through a websocket).

Pure codec, no I/O. Frames are big-endian:

    control: 1|version(15)=3 | type(16) | flags(8) | length(24) | payload
    data:    0|stream-id(31)            | flags(8) | length(24) | payload

Header blocks (SYN_STREAM, SYN_REPLY, HEADERS) are zlib-compressed with the SPDY/3 dictionary
and ONE zlib stream per direction for the whole session, so encoding and decoding must happen
in wire order on a `HeaderCompressor` / `HeaderDecompressor` owned by the session.
"""

from __future__ import annotations

import dataclasses
import struct
import zlib
from collections.abc import Iterator

VERSION = 3
FLAG_FIN = 0x01

SYN_STREAM = 1
SYN_REPLY = 2
RST_STREAM = 3
SETTINGS = 4
PING = 6
GOAWAY = 7
HEADERS = 8
WINDOW_UPDATE = 9

RST_PROTOCOL_ERROR = 1
RST_CANCEL = 5
GOAWAY_OK = 0
GOAWAY_PROTOCOL_ERROR = 1

MAX_FRAME_LENGTH = 0xFFFFFF
_FRAME_HEADER = struct.Struct(">IBBH")  # word, flags, length split as 8 + 16 bits
_HEADER_SIZE = 8


def _spdy3_dictionary() -> bytes:
    """The 1,423-byte zlib dictionary of the SPDY/3 spec (section 2.6.10.1)."""
    words = (
        "options",
        "head",
        "post",
        "put",
        "delete",
        "trace",
        "accept",
        "accept-charset",
        "accept-encoding",
        "accept-language",
        "accept-ranges",
        "age",
        "allow",
        "authorization",
        "cache-control",
        "connection",
        "content-base",
        "content-encoding",
        "content-language",
        "content-length",
        "content-location",
        "content-md5",
        "content-range",
        "content-type",
        "date",
        "etag",
        "expect",
        "expires",
        "from",
        "host",
        "if-match",
        "if-modified-since",
        "if-none-match",
        "if-range",
        "if-unmodified-since",
        "last-modified",
        "location",
        "max-forwards",
        "pragma",
        "proxy-authenticate",
        "proxy-authorization",
        "range",
        "referer",
        "retry-after",
        "server",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "user-agent",
        "vary",
        "via",
        "warning",
        "www-authenticate",
        "method",
        "get",
        "status",
        "200 OK",
        "version",
        "HTTP/1.1",
        "url",
        "public",
        "set-cookie",
        "keep-alive",
        "origin",
    )
    tail = (
        "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
        "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
        "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
        "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00"
        " Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
        "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
        "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
    )
    prefixed = b"".join(_length_prefixed(word.encode()) for word in words)
    return prefixed + tail.encode()


def _length_prefixed(value: bytes) -> bytes:
    return struct.pack(">I", len(value)) + value


DICTIONARY = _spdy3_dictionary()


class _Flags:
    flags: int

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


@dataclasses.dataclass(frozen=True)
class DataFrame(_Flags):
    stream_id: int
    flags: int
    data: bytes


@dataclasses.dataclass(frozen=True)
class ControlFrame(_Flags):
    type: int
    flags: int
    payload: bytes

    @property
    def stream_id(self) -> int:
        """The stream of SYN_STREAM, SYN_REPLY, RST_STREAM, HEADERS and WINDOW_UPDATE frames."""
        return struct.unpack_from(">I", self.payload)[0] & 0x7FFFFFFF


class ProtocolError(Exception):
    """The peer sent bytes that are not SPDY/3.1."""


class FrameReader:
    """Reassembles frames from arbitrary chunks (kubectl writes each frame field separately)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, chunk: bytes) -> Iterator[DataFrame | ControlFrame]:
        """Adds a chunk and yields every frame now complete."""
        self._buffer += chunk
        while len(self._buffer) >= _HEADER_SIZE:
            word, flags, length_high, length_low = _FRAME_HEADER.unpack_from(self._buffer)
            length = length_high << 16 | length_low
            if len(self._buffer) < _HEADER_SIZE + length:
                return
            payload = bytes(self._buffer[_HEADER_SIZE : _HEADER_SIZE + length])
            del self._buffer[: _HEADER_SIZE + length]
            yield _decode(word, flags, payload)


def _decode(word: int, flags: int, payload: bytes) -> DataFrame | ControlFrame:
    if not word & 0x80000000:
        return DataFrame(stream_id=word, flags=flags, data=payload)
    version = word >> 16 & 0x7FFF
    if version != VERSION:
        raise ProtocolError(f"unsupported SPDY version {version}")
    return ControlFrame(type=word & 0xFFFF, flags=flags, payload=payload)


def _frame(word: int, flags: int, payload: bytes) -> bytes:
    if len(payload) > MAX_FRAME_LENGTH:
        raise ValueError(f"frame payload of {len(payload)} bytes is too long")
    return _FRAME_HEADER.pack(word, flags, len(payload) >> 16, len(payload) & 0xFFFF) + payload


def _control(frame_type: int, payload: bytes, flags: int = 0) -> bytes:
    return _frame(0x80000000 | VERSION << 16 | frame_type, flags, payload)


def data_frame(stream_id: int, data: bytes, fin: bool = False) -> bytes:
    return _frame(stream_id & 0x7FFFFFFF, FLAG_FIN if fin else 0, data)


def syn_reply_frame(stream_id: int, header_block: bytes, fin: bool = False) -> bytes:
    return _control(SYN_REPLY, struct.pack(">I", stream_id) + header_block, FLAG_FIN if fin else 0)


def rst_stream_frame(stream_id: int, status: int) -> bytes:
    return _control(RST_STREAM, struct.pack(">II", stream_id, status))


def ping_frame(ping_id: int) -> bytes:
    return _control(PING, struct.pack(">I", ping_id))


def goaway_frame(last_good_stream_id: int, status: int = GOAWAY_OK) -> bytes:
    return _control(GOAWAY, struct.pack(">II", last_good_stream_id, status))


def syn_stream_header_block(frame: ControlFrame) -> bytes:
    """SYN_STREAM payload: stream-id(32) assoc-id(32) priority(8) slot(8) header-block."""
    return frame.payload[10:]


def ping_id(frame: ControlFrame) -> int:
    return struct.unpack_from(">I", frame.payload)[0]


def rst_status(frame: ControlFrame) -> int:
    return struct.unpack_from(">I", frame.payload, 4)[0]


class HeaderCompressor:
    """Encodes header blocks for one direction of a session."""

    def __init__(self) -> None:
        self._zlib = zlib.compressobj(9, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY, DICTIONARY)

    def encode(self, headers: dict[str, str]) -> bytes:
        block = struct.pack(">I", len(headers))
        for name, value in headers.items():
            block += _length_prefixed(name.lower().encode()) + _length_prefixed(value.encode())
        return self._zlib.compress(block) + self._zlib.flush(zlib.Z_SYNC_FLUSH)


class HeaderDecompressor:
    """Decodes header blocks for one direction of a session. Multiple values stay NUL-joined."""

    def __init__(self) -> None:
        self._zlib = zlib.decompressobj(zdict=DICTIONARY)

    def decode(self, compressed: bytes) -> dict[str, str]:
        try:
            block = self._zlib.decompress(compressed)
        except zlib.error as error:
            raise ProtocolError(f"bad header block: {error}") from error
        return _parse_header_block(block)


def _parse_header_block(block: bytes) -> dict[str, str]:
    try:
        (count,), offset = struct.unpack_from(">I", block), 4
        headers = {}
        for _ in range(count):
            name, offset = _read_length_prefixed(block, offset)
            value, offset = _read_length_prefixed(block, offset)
            headers[name.decode().lower()] = value.decode()
    except (struct.error, UnicodeDecodeError) as error:
        raise ProtocolError(f"bad header block: {error}") from error
    return headers


def _read_length_prefixed(block: bytes, offset: int) -> tuple[bytes, int]:
    (length,) = struct.unpack_from(">I", block, offset)
    end = offset + 4 + length
    if end > len(block):
        raise struct.error("header string runs past the block")
    return block[offset + 4 : end], end
