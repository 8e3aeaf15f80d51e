"""The `X-CC-Signature` header (CONTRACT): `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, keyed with
the webhook's secret. The timestamp is signed too, so a receiver can refuse an old delivery replayed at it."""

from __future__ import annotations

import hashlib
import hmac


def signature(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, body: bytes, header: str) -> bool:
    """What a receiver does (docs/webhooks.md shows it on its own): recompute, compare in constant time."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    if not fields.get("t", "").isdigit() or "v1" not in fields:
        return False
    return hmac.compare_digest(signature(secret, body, int(fields["t"])), f"t={fields['t']},v1={fields['v1']}")
