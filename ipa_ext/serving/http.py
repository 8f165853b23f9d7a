"""A minimal HTTP/1.1 layer over asyncio streams: keep-alive server connections and a pooled client.

Enough for the V2 inference protocol between processes on 127.0.0.1: Content-Length bodies only
(chunked bodies are refused), headers and body written in one ``write()``.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 256 * 1024 * 1024
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 411: "Length Required",
           413: "Payload Too Large", 500: "Internal Server Error", 503: "Service Unavailable"}


class HttpError(Exception):
    """A malformed request or response; ``status`` is the code to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def json_response(status: int, obj: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status, json.dumps(obj, separators=(",", ":")).encode(),
                    {"content-type": "application/json", **(headers or {})})


async def _read_head(reader: asyncio.StreamReader) -> tuple[str, dict[str, str]] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise HttpError(400, "truncated header") from None
        return None
    except asyncio.LimitOverrunError:
        raise HttpError(413, "header too large") from None
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if line:
            key, sep, value = line.partition(":")
            if not sep:
                raise HttpError(400, f"bad header line {line!r}")
            headers[key.strip().lower()] = value.strip()
    return lines[0], headers


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raise HttpError(411, "chunked bodies are not supported; send Content-Length")
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError:
        raise HttpError(400, "bad Content-Length") from None
    if length < 0 or length > MAX_BODY_BYTES:
        raise HttpError(413, f"body of {length} bytes")
    return await reader.readexactly(length) if length else b""


def _encode(first_line: str, headers: dict[str, str], body: bytes) -> bytes:
    head = [first_line, f"content-length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in headers.items() if k.lower() != "content-length"]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


Handler = Callable[[Request], Awaitable[Response]]


async def serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, handler: Handler) -> None:
    """Answer requests on one connection until the peer closes it (or asks to)."""
    try:
        while True:
            try:
                head = await _read_head(reader)
                if head is None:
                    return
                line, headers = head
                parts = line.split(" ")
                if len(parts) != 3:
                    raise HttpError(400, f"bad request line {line!r}")
                body = await _read_body(reader, headers)
            except HttpError as exc:
                writer.write(_encode(f"HTTP/1.1 {exc.status} {REASONS.get(exc.status, '')}",
                                     {"connection": "close", "content-type": "application/json"},
                                     json.dumps({"error": str(exc)}).encode()))
                await writer.drain()
                return
            response = await handler(Request(parts[0], parts[1], headers, body))
            close = headers.get("connection", "").lower() == "close"
            extra = {"connection": "close"} if close else {}
            writer.write(_encode(f"HTTP/1.1 {response.status} {REASONS.get(response.status, '')}",
                                 {**response.headers, **extra}, response.body))
            await writer.drain()
            if close:
                return
    except (ConnectionError, asyncio.IncompleteReadError):
        return
    finally:
        writer.close()


class Connection:
    """One keep-alive client connection (one request at a time)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def request(self, method: str, path: str, body: bytes = b"",
                      headers: dict[str, str] | None = None) -> Response:
        self.writer.write(_encode(f"{method} {path} HTTP/1.1", {"host": "127.0.0.1", **(headers or {})}, body))
        await self.writer.drain()
        head = await _read_head(self.reader)
        if head is None:
            raise ConnectionResetError("the server closed the connection")
        line, rheaders = head
        try:
            status = int(line.split(" ")[1])
        except (IndexError, ValueError):
            raise HttpError(502, f"bad status line {line!r}") from None
        return Response(status, await _read_body(self.reader, rheaders), rheaders)

    def close(self) -> None:
        self.writer.close()


class Pool:
    """Persistent connections to one ``host:port``; a reset idle connection is retried once on a fresh one."""

    def __init__(self, host: str, port: int, limit: int = 64) -> None:
        self.host, self.port = host, port
        self._idle: list[Connection] = []
        self._slots = asyncio.Semaphore(limit)

    async def request(self, method: str, path: str, body: bytes = b"",
                      headers: dict[str, str] | None = None) -> Response:
        async with self._slots:
            for attempt in (0, 1):
                reused = bool(self._idle)
                conn = self._idle.pop() if reused else Connection(
                    *await asyncio.open_connection(self.host, self.port, limit=MAX_HEADER_BYTES))
                try:
                    response = await conn.request(method, path, body, headers)
                except (ConnectionError, asyncio.IncompleteReadError):
                    conn.close()
                    if reused and attempt == 0:
                        continue
                    raise
                except BaseException:
                    conn.close()
                    raise
                self._idle.append(conn)
                return response
        raise AssertionError("unreachable")

    def close(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()
