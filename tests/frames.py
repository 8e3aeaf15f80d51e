"""What a desktop can rely on: every frame the server sends is a `schema.desktop.ServerFrame`, and that model,
written again, is the frame it came from — no field the model does not describe, none it adds or changes."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from schema.desktop import SERVER_FRAME, ServerFrame


def server_frame(text: str | bytes) -> ServerFrame:
    """The frame as its model, failing when the model does not write it back as it was sent."""
    frame = SERVER_FRAME.validate_json(text)
    sent, written = json.loads(text), json.loads(SERVER_FRAME.dump_json(frame))
    assert same_json(sent, written), f"the model writes a {frame.type} frame otherwise:\n{sent}\n{written}"
    return frame


def same_json(sent: Any, written: Any) -> bool:
    """Equal JSON, where one instant may be written two ways: PostgreSQL renders the cards in offers and
    `hello` itself (`+00:00`), pydantic writes `Z`."""
    if isinstance(sent, dict) and isinstance(written, dict):
        return sent.keys() == written.keys() and all(same_json(sent[key], written[key]) for key in sent)
    if isinstance(sent, list) and isinstance(written, list):
        return len(sent) == len(written) and all(same_json(a, b) for a, b in zip(sent, written, strict=True))
    if isinstance(sent, str) and isinstance(written, str) and sent != written:
        try:
            return datetime.fromisoformat(sent) == datetime.fromisoformat(written)
        except ValueError:
            return False
    return type(sent) is type(written) and bool(sent == written)
