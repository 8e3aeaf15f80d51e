"""Client cards: the whole card in one query, by client id or by any identity, as JSON text; and its timeline
page by page.

The database renders the card (`cc_card`, migrations 005 and 016) in the shape of `schema.ClientCard`, and it
goes to the API's clients and to agents' desktops as it is: parsing and writing it again cost more than all the
rest of an offer (docs/performance.md, "Figures behind choices in the code"). The contract tests hold the
database's card to the model. A card carries the first page of its timeline; the rest is read by cursor, each
page by the index (`cc_timeline_page`), so a page costs the same whatever the history's length.
(Identities are resolved to clients where interactions are recorded: `cc_record_inbound`, migrations 002, 016.)"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg

from contactcenter.errors import Invalid
from schema import Channel, IdentityKind

# The timeline entries a card carries (its first page), and the most one page may ask for.
TIMELINE_LIMIT = 50
TIMELINE_PAGE_MAX = 200


# The card is defined once, in the database (`cc_card`): the recording of an inbound interaction reads it
# there too, for the offer that follows. A merged-away id gives the survivor's card.
CARD_BY_ID = "SELECT cc_card($1, $2)"
# The card as a column beside an interaction `x`.
CARD_OF_INTERACTION = f"cc_card(x.client_id, {TIMELINE_LIMIT})"
CARD_BY_IDENTITY = "SELECT cc_card((SELECT client_id FROM identities WHERE kind = $1 AND value = $2), $3)"
TIMELINE_PAGE = """
SELECT cc_timeline_page(cc_card_members(r.root), $2, $3, $4, $5)::text
FROM (SELECT cc_card_root($1) AS root) r WHERE r.root IS NOT NULL
"""


def parse_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """A timeline cursor (`<microseconds since the epoch>_<entry id>`, as `cc_timeline_page` writes it)."""
    micros, _, entry = cursor.partition("_")
    try:
        at = datetime.fromtimestamp(int(micros) / 1_000_000, tz=UTC)
        return at, uuid.UUID(entry)
    except (ValueError, OverflowError, OSError):
        raise Invalid("not a cursor this API gave", field="cursor") from None


class Cards:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def by_id(self, client_id: uuid.UUID) -> str | None:
        """The card's JSON, or None when there is no such client."""
        text: str | None = await self._pool.fetchval(CARD_BY_ID, client_id, TIMELINE_LIMIT)
        return text

    async def by_identity(self, kind: IdentityKind, value: str) -> str | None:
        """The card's JSON of whoever holds the identity, or None."""
        text: str | None = await self._pool.fetchval(CARD_BY_IDENTITY, str(kind), value, TIMELINE_LIMIT)
        return text

    async def timeline(
        self, client_id: uuid.UUID, *, limit: int, cursor: str | None = None, channel: Channel | None = None
    ) -> str | None:
        """A page of the card's timeline (`schema.TimelinePage` as JSON), newest first, after `cursor`; None
        when there is no such client."""
        before_at, before_id = parse_cursor(cursor) if cursor else (None, None)
        text: str | None = await self._pool.fetchval(
            TIMELINE_PAGE, client_id, limit, before_at, before_id, str(channel) if channel else None
        )
        return text
