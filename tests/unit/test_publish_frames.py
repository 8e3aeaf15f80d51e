"""The relay's hand-marshalled publish frames are the bytes pamqp writes for the same publish."""

from __future__ import annotations

import pamqp.frame
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pamqp import commands
from pamqp.body import ContentBody
from pamqp.header import ContentHeader

from contactcenter.bus.frames import publish_frames

BODY_PER_FRAME = 131_072 - 8  # RabbitMQ's default frame_max, less a frame's overhead


def pamqp_frames(
    channel: int, exchange: str, routing_key: str, body: bytes, content_type: str, message_id: str, per_frame: int
) -> bytes:
    properties = commands.Basic.Properties(content_type=content_type, delivery_mode=2, message_id=message_id)
    frames: list[object] = [
        commands.Basic.Publish(exchange=exchange, routing_key=routing_key),
        ContentHeader(properties=properties, body_size=len(body)),
    ]
    frames += [ContentBody(body[n : n + per_frame]) for n in range(0, len(body), per_frame)]
    return b"".join(pamqp.frame.marshal(frame, channel) for frame in frames)  # type: ignore[arg-type]  # pamqp's union of frame kinds


@given(
    channel=st.integers(1, 65_535),
    exchange=st.text("abcXYZ019-_.:", min_size=1, max_size=127),  # the names AMQP allows an exchange
    routing_key=st.text(max_size=80).filter(lambda s: len(s.encode()) <= 255),
    body=st.binary(max_size=3_000),
    message_id=st.text(st.characters(codec="utf-8"), min_size=1, max_size=40),  # an event's id: never empty
    per_frame=st.sampled_from([BODY_PER_FRAME, 1_000, 7]),
)
def test_a_publish_is_the_bytes_pamqp_marshals(
    channel: int, exchange: str, routing_key: str, body: bytes, message_id: str, per_frame: int
) -> None:
    ours = publish_frames(channel, exchange, routing_key, body, "application/cloudevents+json", message_id, per_frame)
    assert ours == pamqp_frames(
        channel, exchange, routing_key, body, "application/cloudevents+json", message_id, per_frame
    )


def test_a_routing_key_longer_than_a_short_string_is_refused() -> None:
    with pytest.raises(ValueError, match="255 bytes"):
        publish_frames(1, "cc.events", "k" * 256, b"{}", "application/json", "1", BODY_PER_FRAME)
