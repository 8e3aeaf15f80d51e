"""A publish's three AMQP 0-9-1 frames (method, content header, body) marshalled by hand, byte for byte what
pamqp writes for `Basic.Publish` with a content type, persistent delivery mode and a message id: the event relay
writes thousands a second, and pamqp's general marshalling (a frame object, its validation, each property
looked up) was a fifth of its CPU. `tests/unit/test_publish_frames.py` checks the bytes against pamqp's."""

from __future__ import annotations

import struct

FRAME_END = b"\xce"
_METHOD_HEAD = struct.Struct(">BHIHHH")  # frame type, channel, size | class, method, reserved ticket
_HEADER_HEAD = struct.Struct(">BHIHHQH")  # frame type, channel, size | class, weight, body size, property flags
_BODY_HEAD = struct.Struct(">BHI")
_BASIC, _PUBLISH = 60, 40
# Basic's property flags: content-type (bit 15), delivery-mode (bit 12), message-id (bit 7).
_FLAGS = 0x8000 | 0x1000 | 0x0080
_PERSISTENT = b"\x02"


def _short_string(value: str) -> bytes:
    encoded = value.encode()
    if len(encoded) > 255:
        raise ValueError(f"an AMQP short string holds at most 255 bytes, not {len(encoded)}")
    return bytes((len(encoded),)) + encoded


def publish_frames(
    channel: int, exchange: str, routing_key: str, body: bytes, content_type: str, message_id: str, body_per_frame: int
) -> bytes:
    """The frames of one persistent publish (a message id, never empty), not mandatory, not immediate; the
    body split into frames of at most `body_per_frame` bytes (aiormq's `Channel.max_content_size`)."""
    method = _short_string(exchange) + _short_string(routing_key) + b"\x00"
    properties = _short_string(content_type) + _PERSISTENT + _short_string(message_id)
    parts = [
        _METHOD_HEAD.pack(1, channel, 6 + len(method), _BASIC, _PUBLISH, 0),
        method,
        FRAME_END,
        _HEADER_HEAD.pack(2, channel, 14 + len(properties), _BASIC, 0, len(body), _FLAGS),
        properties,
        FRAME_END,
    ]
    for start in range(0, len(body), body_per_frame):
        chunk = body[start : start + body_per_frame]
        parts += (_BODY_HEAD.pack(3, channel, len(chunk)), chunk, FRAME_END)
    return b"".join(parts)
