"""Every operation of the HTTP API, taken from the same declarations that register its routes and write its
OpenAPI document, meets the bytes and numbers that broke edges before — in each path, query and header
parameter, in its bearer token and in its JSON body — and answers a 4xx in the error shape, never a 5xx.

Schemathesis (test_schemathesis.py) generates valid and invalid input from the document, but not these: raw
bytes that are no UTF-8, lone surrogates, NUL, numbers past Python's 4,300 digits, a charset no codec reads.
An operation added later is swept here without a line of this file changing. The test prints how many cases
each operation took (`pytest -s`)."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Iterator

import pytest

from contactcenter.api.operations import Access, Operation
from contactcenter.host.app import http_operations
from tests.running import ADMIN_TOKEN, RunningService

# As they would stand in a URL (percent-encoded where a client must encode them), or raw in a header.
IN_URL = ["%00", "%FF", "%C3", "%ED%A0%80", "-1", "1e400", "9" * 5000, "a" * 3000]
IN_HEADER = [b"\xff", b"\xed\xa0\x80", b"\xc3", b"9" * 5000, b"-1"]
BODIES = [
    b"1" * 5000,
    b'{"name": ' + b"9" * 5000 + b"}",
    b"1e400",
    b'{"name": 1e400}',
    b"[" * 100_000 + b"]" * 100_000,
    b'{"name": "\\ud800"}',
    b'{"name": "\\u0000"}',
    b'{"name": "\xff"}',
    b"\xff\xfe",
    b"[]",
    b"null",
    b"",
]
CHARSETS = [b"klingon", b"\xff", b"rot13", b"utf-16"]


def _fill(path: str, value: str) -> str:
    return re.sub(r"\{[^}]+\}", value, path)


def _requests(operation: Operation, token: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(request line and headers, body) for each hostile case of one operation."""
    method = operation.method.encode()
    path = _fill(operation.path, str(uuid.uuid4())).encode()
    auth = b"Authorization: Bearer " + token
    json_body = operation.body is not None and operation.body_media_type == "application/json"
    content = b"\r\nContent-Type: application/json" if json_body else b""
    body = b"{}" if json_body else b""
    if "{" in operation.path:
        for value in IN_URL:
            yield method + b" " + _fill(operation.path, value).encode() + b" HTTP/1.1\r\n" + auth + content, body
    for parameter in operation.parameters:
        if parameter.location == "query":
            for value in IN_URL:
                query = f"?{parameter.name}={value}".encode()
                yield method + b" " + path + query + b" HTTP/1.1\r\n" + auth + content, body
        elif parameter.location == "header":
            for raw in IN_HEADER:
                header = parameter.name.encode() + b": " + raw
                yield method + b" " + path + b" HTTP/1.1\r\n" + auth + content + b"\r\n" + header, body
    for raw in IN_HEADER[:3]:
        yield method + b" " + path + b" HTTP/1.1\r\nAuthorization: Bearer " + raw + content, body
    if json_body:
        for hostile in BODIES:
            yield method + b" " + path + b" HTTP/1.1\r\n" + auth + content, hostile
        for charset in CHARSETS:
            typed = b"\r\nContent-Type: application/json; charset=" + charset
            yield method + b" " + path + b" HTTP/1.1\r\n" + auth + typed, b'{"name": "x"}'


async def _answer(base_url: str, head: bytes, body: bytes) -> tuple[int, str, bytes]:
    """The status, content type and start of the body of one request written byte for byte."""
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(
            head
            + f"\r\nHost: {host}:{port}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        async with asyncio.timeout(30):
            answer = b""
            # Enough for the head and a JSON error; a stream that never ends (the supervisors') is cut here.
            while b"\r\n\r\n" not in answer or len(answer) < 512:
                chunk = await reader.read(4096)
                if not chunk:
                    break
                answer += chunk
    finally:
        writer.close()
    head_text, _, payload = answer.partition(b"\r\n\r\n")
    status_line, *lines = head_text.decode("latin-1").split("\r\n")
    content_type = next(
        (line.split(":", 1)[1].strip() for line in lines if line.lower().startswith("content-type:")), ""
    )
    return int(status_line.split()[1]), content_type, payload


def _in_the_error_shape(content_type: str, payload: bytes) -> bool:
    return content_type.startswith("application/json") and "code" in json.loads(payload)["error"]


def _token(operation: Operation, agent_token: str) -> bytes:
    return (agent_token if operation.access is Access.AGENT else ADMIN_TOKEN).encode()


# Several thousand requests, one at a time: tens of seconds on a quiet machine, more on a shared one.
@pytest.mark.timeout(600)
async def test_every_operation_answers_hostile_bytes_and_numbers_with_a_4xx_in_the_error_shape(
    service: RunningService,
) -> None:
    await service.create_queue("sales", ["sms", "voice", "chat"])
    agent = await service.create_agent("Ann", ["sales"])
    failures: list[str] = []
    cases: dict[str, int] = {}
    for operation in http_operations():
        label = f"{operation.method} {operation.path}"
        cases[label] = 0
        for head, body in _requests(operation, _token(operation, agent["token"])):
            cases[label] += 1
            status, content_type, payload = await _answer(service.base_url, head, body)
            if status >= 500:
                failures.append(f"{label}: {status} to {head[:160]!r} + {body[:40]!r}: {payload[:200]!r}")
            elif status >= 400 and not _in_the_error_shape(content_type, payload):
                failures.append(f"{label}: {status} not in the error shape to {head[:160]!r}: {payload[:200]!r}")
    print("\n".join(f"{label}: {count} cases" for label, count in cases.items()))
    print(f"{sum(cases.values())} cases over {len(cases)} operations")
    assert not failures, "\n".join(failures)
