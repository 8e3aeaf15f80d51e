"""A visitor's token: its visitor id, signed (HS256 JWT, PyJWT) with the server's secret and expiring. The widget
keeps it and hands it back (`?token=`) to resume the same conversation; a token changed by one byte, signed with
another key or past its expiry is refused."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import jwt

from contactcenter.errors import Forbidden

AUDIENCE = "contactcenter:chat-visitor"
ALGORITHM = "HS256"


class VisitorTokens:
    def __init__(self, secret: str, lifetime: timedelta) -> None:
        self._secret = secret
        self._lifetime = lifetime

    def issue(self, visitor_id: uuid.UUID) -> str:
        now = datetime.now(UTC)
        claims = {"sub": str(visitor_id), "aud": AUDIENCE, "iat": now, "exp": now + self._lifetime}
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def visitor(self, token: str) -> uuid.UUID:
        """The visitor the token was issued to; `Forbidden` naming `token` otherwise (the reason is not told:
        it would help whoever forges one)."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                options={"require": ["sub", "exp", "aud"]},
            )
            return uuid.UUID(str(claims["sub"]))
        except (jwt.PyJWTError, ValueError):
            raise Forbidden("this token is not one we issued, or it has expired", field="token") from None
