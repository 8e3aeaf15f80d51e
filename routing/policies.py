"""The routing decisions, in the contact center's words: which queue serves a contact, in what order work
waits, which agent gets it, what a rejection and an unanswered offer do, who is told of a contact.

Most of them run inside PostgreSQL or Redis, where they decide atomically and in one round trip: a rule is
written once, there, and named here with the place it runs (`runs_in`). `tests/unit/test_routing_policies.py`
checks that each place still holds its rule's code; `tests/contract/test_routing_policies.py` pins each rule
through the real adapters. Change a rule here and there together.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Site:
    """Where a rule runs: `name` (a SQL function, a Lua function or script, a Python function) in `resource`
    of `package` (read with `importlib.resources`)."""

    package: str
    resource: str
    name: str


@dataclass(frozen=True)
class Policy:
    """A routing decision: its rule, and the code that runs it for speed."""

    rule: str
    runs_in: tuple[Site, ...]


_MIGRATIONS = "contactcenter.store"
_SCRIPTS = "contactcenter.live"

QUEUE_FOR_A_CONTACT = Policy(
    rule=(
        "A contact from a client with an open conversation on its channel joins that conversation, its queue and"
        " its agent. Otherwise it opens a conversation in the queue it chose (a caller's menu choice), when that"
        " queue serves its channel, else in the oldest queue that serves its channel (of queues made at the same"
        " moment, the first by name). When no queue serves the channel, the contact is stored and waits unrouted."
        " A contact received before its sender's card was erased (in flight) is stored emptied on that card, in a"
        " closed conversation: it is queued nowhere. A contact that left before it was recorded (a caller who hung"
        " up, or went to voicemail, while its call was on its way to the router) opens a conversation of its own,"
        " closed at once: it is queued nowhere either."
    ),
    runs_in=(
        # The recording of every inbound contact, in the transaction that stores it.
        Site(_MIGRATIONS, "migrations/032_record_inbound_events_in_one_insert.sql", "cc_record_inbound"),
        # A contact left in a conversation closed before any agent saw it finds its place again.
        Site(_MIGRATIONS, "migrations/031_card_gaps.sql", "cc_rehome_inbound"),
    ),
)

ORDER_OF_WAITING_WORK = Policy(
    rule=(
        "Work waits in its queue by priority, then by arrival: the oldest first. Work taken back from an agent"
        " (rejected, unanswered, the agent left) keeps its place at the front. An agent of several queues is"
        " offered first the work that has waited longest among them. Work put back after live state was lost"
        " takes its place by when its conversation opened."
    ),
    runs_in=(
        Site(_SCRIPTS, "scripts/enqueue.lua", "score"),
        Site(_SCRIPTS, "scripts/_lib.lua", "revoke"),
        Site(_SCRIPTS, "scripts/_lib.lua", "match_queues"),
        Site(_SCRIPTS, "scripts/restore.lua", "enqueued"),
    ),
)

AGENT_FOR_WORK = Policy(
    rule=(
        "Work goes to the agent of its queue who is available, has room (fewer offers and conversations than"
        " its capacity) and has been idle longest. An agent is never offered more at once than its capacity."
    ),
    runs_in=(
        Site(_SCRIPTS, "scripts/_lib.lua", "match_queue"),
        Site(_SCRIPTS, "scripts/_lib.lua", "refresh_eligibility"),
    ),
)

REJECTING_AGENT_GOES_TO_THE_BACK = Policy(
    rule=(
        "An agent who rejects an offer goes to the back of the line in each of its queues, behind every agent"
        " waiting there; the work goes to the next agent, keeping its place in the queue."
    ),
    runs_in=(Site(_SCRIPTS, "scripts/reject.lua", "idle_since"),),
)

UNANSWERED_OFFER_SETS_THE_AGENT_AWAY = Policy(
    rule=(
        "An offer not answered within the reservation time (CC_RESERVATION_TIMEOUT_SECONDS) is taken back and"
        " its agent set away, as it is likely not there; its other pending offers are taken back too, and the"
        " work goes to the next agent. Every router sweeps for such offers."
    ),
    runs_in=(
        Site(_SCRIPTS, "scripts/expire.lua", "'away'"),
        Site("routing", "sweeper.py", "expire_reservations"),
    ),
)

CONTACT_FOR_ITS_HOLDER = Policy(
    rule=(
        "A contact in a conversation an agent holds is news for that agent, not work for the queue: the agent is"
        " told, even when it accepted the conversation while the contact was being routed. A provider's retry of"
        " a contact already stored is not news; our own second attempt at one is told again, as the first may"
        " have failed before telling."
    ),
    runs_in=(Site("routing", "placement.py", "place"),),
)

POLICIES: tuple[Policy, ...] = (
    QUEUE_FOR_A_CONTACT,
    ORDER_OF_WAITING_WORK,
    AGENT_FOR_WORK,
    REJECTING_AGENT_GOES_TO_THE_BACK,
    UNANSWERED_OFFER_SETS_THE_AGENT_AWAY,
    CONTACT_FOR_ITS_HOLDER,
)
