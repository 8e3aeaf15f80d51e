"""How many contacts a process holds at once from providers' webhooks; past the bound, a 503 at once.

A provider retries a 503 (Twilio does, with the same idempotency key), so nothing is lost. What the bound buys
is that an overloaded service goes on carrying what it accepted at full speed, instead of taking everything
in, confirming nothing within the provider's patience, and carrying less: on two cores at 1,000 SMS/s offered
it carried 645 to 710/s without the bound (503s only after five-second waits, p99 6.4 s) and 774/s with it
(p99 0.9 s).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from contactcenter.errors import Unavailable


class Admission:
    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("admission needs room for at least one contact")
        self._limit = limit
        self._in_hand = 0

    @property
    def in_hand(self) -> int:
        return self._in_hand

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one place while a contact is taken in; `Unavailable` (503, retry) when all are taken."""
        if self._in_hand >= self._limit:
            raise Unavailable("too many contacts are being taken in; retry shortly")
        self._in_hand += 1
        try:
            yield
        finally:
            self._in_hand -= 1
