"""Supervisors' figures, folded from the event stream one event at a time: per queue (and per channel within it)
contacts waiting, offered, answered and abandoned today, service level, speed of answer and handle time; per
agent its state, since when, its work and what it handled today. No I/O: `watch.QueueWatch` feeds it, and the
formulas are in docs/supervisors.md (the same ones `history` runs in SQL over the event log).

"Today" is the UTC day of the events' own times: the first event of a new day starts the day's counts afresh
(contacts still waiting and agents' states carry over).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

DAY_MS = 86_400_000
INTERVAL_MS = 15 * 60_000
AGENT_STATES = ("available", "busy", "away", "wrap_up", "offline")
UNKNOWN_CHANNEL = "unknown"


@dataclass(frozen=True)
class QueueInfo:
    """What the figures need to know of a queue: its name and its service-level target."""

    id: uuid.UUID
    name: str
    target_seconds: float
    goal: float  # the share of contacts to answer within the target, 0 to 1


@dataclass(frozen=True)
class AgentInfo:
    id: uuid.UUID
    name: str
    queue_ids: frozenset[uuid.UUID]


@dataclass
class Counts:
    """Additive counts of one queue (or channel, or interval): the figures are ratios of these."""

    offered: int = 0
    answered: int = 0
    answered_within_target: int = 0
    abandoned: int = 0
    short_abandoned: int = 0
    abandoned_after_target: int = 0
    answer_wait_ms: int = 0
    completed: int = 0
    handle_ms: int = 0

    def add(self, other: Counts) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def figures(self) -> dict[str, Any]:
        """The counts and what is derived from them (docs/supervisors.md gives each formula)."""
        counted = self.answered + self.abandoned_after_target
        return {
            "offered": self.offered,
            "answered": self.answered,
            "answered_within_target": self.answered_within_target,
            "abandoned": self.abandoned,
            "short_abandoned": self.short_abandoned,
            "abandoned_after_target": self.abandoned_after_target,
            "completed": self.completed,
            "service_level": round(self.answered_within_target / counted, 4) if counted else None,
            "asa_seconds": round(self.answer_wait_ms / self.answered / 1000, 3) if self.answered else None,
            "aht_seconds": round(self.handle_ms / self.completed / 1000, 3) if self.completed else None,
        }


@dataclass
class Waiting:
    queue_id: uuid.UUID
    interaction_id: uuid.UUID
    since_ms: int


@dataclass
class Contact:
    """A contact routed to a queue, from its routing until it is completed or abandoned."""

    queue_id: uuid.UUID
    channel: str
    routed_ms: int
    answered_ms: int | None = None


@dataclass
class AgentNow:
    state: str = "offline"
    since_ms: int | None = None
    offers: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)  # reservation → conversation
    working: set[uuid.UUID] = field(default_factory=set)  # conversations accepted
    handled_today: int = 0
    call_sid: str | None = None  # the call occupying it (agent.call_started until agent.call_ended)
    call_since_ms: int | None = None

    def shown_state(self) -> str:
        if self.state == "offline":
            return self.state
        if self.call_sid is not None:
            return "busy"  # a call occupies its agent, in wrap-up (of another contact) or not
        if self.state == "wrap_up":
            return self.state
        return "busy" if self.working or self.offers else self.state


def _uuid(data: Mapping[str, Any], name: str) -> uuid.UUID | None:
    value = data.get(name)
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def iso(ms: int | None) -> str | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


class Figures:
    def __init__(self, *, short_abandon_seconds: float, default_target_seconds: float, default_goal: float) -> None:
        self.short_abandon_ms = int(short_abandon_seconds * 1000)
        self.default_target_seconds = default_target_seconds
        self.default_goal = default_goal
        self.queues: dict[uuid.UUID, QueueInfo] = {}
        self.agent_info: dict[uuid.UUID, AgentInfo] = {}
        self.day_start_ms = 0
        self.counts: dict[uuid.UUID, dict[str, Counts]] = {}  # queue → channel → today's counts
        self.intervals: dict[uuid.UUID, dict[int, Counts]] = {}  # queue → interval start → counts
        self.waiting: dict[uuid.UUID, Waiting] = {}  # by conversation
        self.contacts: dict[uuid.UUID, Contact] = {}  # by interaction
        self.channels: dict[uuid.UUID, str] = {}  # conversation → channel
        self.agents: dict[uuid.UUID, AgentNow] = {}
        self._gone_reservations: set[uuid.UUID] = set()
        self.last_event_id = 0
        self.last_event_ms = 0

    # What the directory says.

    def know(self, queues: Iterable[QueueInfo], agents: Iterable[AgentInfo]) -> None:
        self.queues = {queue.id: queue for queue in queues}
        self.agent_info = {agent.id: agent for agent in agents}

    def knows_queue(self, queue_id: uuid.UUID) -> bool:
        return queue_id in self.queues

    def target(self, queue_id: uuid.UUID) -> tuple[float, float]:
        queue = self.queues.get(queue_id)
        return (queue.target_seconds, queue.goal) if queue else (self.default_target_seconds, self.default_goal)

    def seed_agent(self, agent_id: uuid.UUID, state: str) -> None:
        """An agent's state as live state holds it, before any event of it was seen."""
        self.agents.setdefault(agent_id, AgentNow(state=state))

    # Folding events.

    def apply(self, event_id: int, event_type: str, time_ms: int, data: Mapping[str, Any]) -> bool:
        """Fold one event in; True when it changed a figure."""
        if event_id:
            self.last_event_id = max(self.last_event_id, event_id)
        self.last_event_ms = max(self.last_event_ms, time_ms)
        self._roll_day(time_ms)
        handler = _HANDLERS.get(event_type)
        if handler is None:
            return False
        return handler(self, time_ms, data)

    def roll_to(self, now_ms: int) -> bool:
        """Start a new day's counts when the clock passed midnight without any event."""
        return self._roll_day(now_ms)

    def _roll_day(self, time_ms: int) -> bool:
        day = time_ms - time_ms % DAY_MS
        if day <= self.day_start_ms:
            return False
        self.day_start_ms = day
        self.counts.clear()
        self.intervals.clear()
        self._gone_reservations.clear()
        for agent in self.agents.values():
            agent.handled_today = 0
        return True

    def _today(self, time_ms: int) -> bool:
        return time_ms >= self.day_start_ms

    def _count(self, queue_id: uuid.UUID, channel: str, time_ms: int) -> list[Counts]:
        if not self._today(time_ms):
            return []  # late news from yesterday: not in today's counts
        by_channel = self.counts.setdefault(queue_id, {})
        interval = time_ms - time_ms % INTERVAL_MS
        return [
            by_channel.setdefault(channel, Counts()),
            self.intervals.setdefault(queue_id, {}).setdefault(interval, Counts()),
        ]

    def _conversation_channel(self, _time_ms: int, data: Mapping[str, Any]) -> bool:
        conversation, channel = _uuid(data, "conversation_id"), data.get("channel")
        if conversation and isinstance(channel, str):
            self.channels[conversation] = channel
        return False

    def _routed(self, time_ms: int, data: Mapping[str, Any]) -> bool:
        interaction, conversation, queue = (_uuid(data, n) for n in ("interaction_id", "conversation_id", "queue_id"))
        if not (interaction and conversation and queue) or interaction in self.contacts:
            return False
        channel = self.channels.get(conversation, UNKNOWN_CHANNEL)
        self.contacts[interaction] = Contact(queue, channel, time_ms)
        self.waiting[conversation] = Waiting(queue, interaction, time_ms)
        for counts in self._count(queue, channel, time_ms):
            counts.offered += 1
        return True

    def _moved(self, _time_ms: int, data: Mapping[str, Any]) -> bool:
        interaction, conversation, queue = (_uuid(data, n) for n in ("interaction_id", "conversation_id", "queue_id"))
        if not (interaction and conversation and queue):
            return False
        waiting = self.waiting.get(conversation)
        if waiting is not None:
            waiting.queue_id = queue
        contact = self.contacts.get(interaction)
        if contact is not None:
            contact.queue_id = queue
        return True

    def _offered(self, _time_ms: int, data: Mapping[str, Any]) -> bool:
        agent, reservation, conversation = (_uuid(data, n) for n in ("agent_id", "reservation_id", "conversation_id"))
        if not (agent and reservation and conversation) or reservation in self._gone_reservations:
            return False
        self.agents.setdefault(agent, AgentNow()).offers[reservation] = conversation
        return True

    def _offer_gone(self, _time_ms: int, data: Mapping[str, Any]) -> bool:
        agent, reservation = _uuid(data, "agent_id"), _uuid(data, "reservation_id")
        if not (agent and reservation):
            return False
        self._gone_reservations.add(reservation)
        return self.agents.setdefault(agent, AgentNow()).offers.pop(reservation, None) is not None

    def _answered(self, time_ms: int, data: Mapping[str, Any]) -> bool:
        interaction, conversation, agent = (_uuid(data, n) for n in ("interaction_id", "conversation_id", "agent_id"))
        if not (interaction and conversation):
            return False
        self.waiting.pop(conversation, None)
        if agent:
            now = self.agents.setdefault(agent, AgentNow())
            now.offers = {r: c for r, c in now.offers.items() if c != conversation}
            now.working.add(conversation)
        contact = self.contacts.get(interaction)
        if contact is None or contact.answered_ms is not None:
            return agent is not None
        contact.answered_ms = time_ms
        wait_ms = time_ms - contact.routed_ms
        target_seconds, _ = self.target(contact.queue_id)
        for counts in self._count(contact.queue_id, contact.channel, time_ms):
            counts.answered += 1
            counts.answer_wait_ms += wait_ms
            counts.answered_within_target += wait_ms <= target_seconds * 1000
        return True

    def _abandoned(self, time_ms: int, data: Mapping[str, Any]) -> bool:
        interaction, conversation = _uuid(data, "interaction_id"), _uuid(data, "conversation_id")
        contact = self.contacts.pop(interaction, None) if interaction else None
        if conversation:
            self.waiting.pop(conversation, None)
        if contact is None or contact.answered_ms is not None:
            return conversation is not None
        wait_ms = time_ms - contact.routed_ms
        target_seconds, _ = self.target(contact.queue_id)
        for counts in self._count(contact.queue_id, contact.channel, time_ms):
            counts.abandoned += 1
            counts.short_abandoned += wait_ms < self.short_abandon_ms
            counts.abandoned_after_target += wait_ms > target_seconds * 1000 and wait_ms >= self.short_abandon_ms
        return True

    def _completed(self, time_ms: int, data: Mapping[str, Any]) -> bool:
        interaction, conversation, agent = (_uuid(data, n) for n in ("interaction_id", "conversation_id", "agent_id"))
        if agent:
            now = self.agents.setdefault(agent, AgentNow())
            if conversation:
                now.working.discard(conversation)
            if self._today(time_ms):
                now.handled_today += 1
        contact = self.contacts.pop(interaction, None) if interaction else None
        if conversation:
            self.waiting.pop(conversation, None)
            self.channels.pop(conversation, None)
        if contact is not None and contact.answered_ms is not None:
            for counts in self._count(contact.queue_id, contact.channel, time_ms):
                counts.completed += 1
                counts.handle_ms += time_ms - contact.answered_ms
        return True

    def _transferred(self, time_ms: int, data: Mapping[str, Any]) -> bool:
        """The work waits again, in the queue it was handed to, from now; the contact counts there from now on,
        as a moved one does (its first answer stays its answer: the history's SQL reads each contact's first
        routing, answer and completion, and the two agree)."""
        interaction, conversation, queue, agent = (
            _uuid(data, n) for n in ("interaction_id", "conversation_id", "queue_id", "agent_id")
        )
        if not (interaction and conversation and queue):
            return False
        if agent:
            self.agents.setdefault(agent, AgentNow()).working.discard(conversation)
        contact = self.contacts.get(interaction)
        if contact is not None:
            contact.queue_id = queue
        self.waiting[conversation] = Waiting(queue, interaction, time_ms)
        return True

    def _conversation_closed(self, _time_ms: int, data: Mapping[str, Any]) -> bool:
        conversation, agent = _uuid(data, "conversation_id"), _uuid(data, "agent_id")
        if conversation and agent and agent in self.agents:
            self.agents[agent].working.discard(conversation)
        return False

    def _call_started(self, time_ms: int, data: Mapping[str, Any]) -> bool:
        agent, call_sid = _uuid(data, "agent_id"), data.get("call_sid")
        if not agent or not isinstance(call_sid, str):
            return False
        now = self.agents.setdefault(agent, AgentNow())
        now.call_sid, now.call_since_ms = call_sid, time_ms
        return True

    def _call_ended(self, _time_ms: int, data: Mapping[str, Any]) -> bool:
        agent, call_sid = _uuid(data, "agent_id"), data.get("call_sid")
        now = self.agents.get(agent) if agent else None
        if now is None or now.call_sid != call_sid:
            return False
        now.call_sid = now.call_since_ms = None
        return True

    def _agent_state(self, time_ms: int, data: Mapping[str, Any]) -> bool:
        agent, state = _uuid(data, "agent_id"), data.get("state")
        if not agent or not isinstance(state, str):
            return False
        now = self.agents.setdefault(agent, AgentNow())
        now.state, now.since_ms = state, time_ms
        return True

    # What supervisors see.

    def snapshot(self, now_ms: int, visible: frozenset[uuid.UUID] | None = None) -> dict[str, Any]:
        """The figures of the queues `visible` (None: every queue) and of their agents."""
        queue_ids = [q for q in self._queue_ids() if visible is None or q in visible]
        queues = [self._queue_figures(q, now_ms) for q in queue_ids]
        overall = Counts()
        for q in queue_ids:
            for counts in self.counts.get(q, {}).values():
                overall.add(counts)
        waiting = [w for w in self.waiting.values() if w.queue_id in set(queue_ids)]
        agents = self._agent_figures(now_ms, frozenset(queue_ids) if visible is not None else None)
        return {
            "as_of": iso(now_ms),
            "event_id": self.last_event_id,
            "day": iso(self.day_start_ms),
            "queues": queues,
            "overall": {
                "waiting": len(waiting),
                **_oldest(waiting, now_ms),
                **overall.figures(),
                "agents": _by_state(agents),
            },
            "agents": agents,
            "intervals": self._interval_figures(queue_ids),
        }

    def _queue_ids(self) -> list[uuid.UUID]:
        seen = set(self.queues) | set(self.counts) | {w.queue_id for w in self.waiting.values()}
        return sorted(seen, key=lambda q: self.queues[q].name if q in self.queues else "~" + str(q))

    def _queue_figures(self, queue_id: uuid.UUID, now_ms: int) -> dict[str, Any]:
        info = self.queues.get(queue_id)
        target_seconds, goal = self.target(queue_id)
        total = Counts()
        channels: dict[str, dict[str, Any]] = {}
        for channel, counts in sorted(self.counts.get(queue_id, {}).items()):
            total.add(counts)
            channels[channel] = counts.figures()
        waiting = [w for w in self.waiting.values() if w.queue_id == queue_id]
        for w in waiting:
            contact = self.contacts.get(w.interaction_id)
            channel = contact.channel if contact else UNKNOWN_CHANNEL
            channels.setdefault(channel, Counts().figures())
            channels[channel]["waiting"] = channels[channel].get("waiting", 0) + 1
        for figures in channels.values():
            figures.setdefault("waiting", 0)
        oldest = _oldest(waiting, now_ms)
        figures = total.figures()
        service_level = figures["service_level"]
        late = (oldest["longest_wait_seconds"] or 0) > target_seconds
        return {
            "id": str(queue_id),
            "name": info.name if info else str(queue_id),
            "waiting": len(waiting),
            **oldest,
            **figures,
            "service_level_target_seconds": target_seconds,
            "service_level_goal": goal,
            "alert": late or (service_level is not None and service_level < goal),
            "channels": channels,
            "agents": _by_state([a for a in self._agent_figures(now_ms, frozenset({queue_id}))]),
        }

    def _agent_figures(self, now_ms: int, queues: frozenset[uuid.UUID] | None) -> list[dict[str, Any]]:
        shown = []
        for agent_id in set(self.agent_info) | set(self.agents):
            info = self.agent_info.get(agent_id)
            if queues is not None and (info is None or not info.queue_ids & queues):
                continue
            now = self.agents.get(agent_id, AgentNow())
            shown.append(
                {
                    "id": str(agent_id),
                    "name": info.name if info else str(agent_id),
                    "state": now.shown_state(),
                    "since": iso(now.since_ms),
                    "seconds_in_state": round((now_ms - now.since_ms) / 1000, 1) if now.since_ms else None,
                    "offered": sorted(str(c) for c in now.offers.values()),
                    "working": sorted(str(c) for c in now.working),
                    "call": now.call_sid,
                    "call_since": iso(now.call_since_ms),
                    "handled_today": now.handled_today,
                    "queues": sorted(self.queues[q].name for q in (info.queue_ids if info else ()) if q in self.queues),
                }
            )
        return sorted(shown, key=lambda a: (a["name"], a["id"]))

    def _interval_figures(self, queue_ids: list[uuid.UUID]) -> list[dict[str, Any]]:
        merged: dict[int, Counts] = {}
        for q in queue_ids:
            for start, counts in self.intervals.get(q, {}).items():
                merged.setdefault(start, Counts()).add(counts)
        return [{"start": iso(start), **merged[start].figures()} for start in sorted(merged)]


def _oldest(waiting: list[Waiting], now_ms: int) -> dict[str, Any]:
    since = min((w.since_ms for w in waiting), default=None)
    return {
        "oldest_waiting_since": iso(since),
        "longest_wait_seconds": round(max(0, now_ms - since) / 1000, 1) if since is not None else 0,
    }


def _by_state(agents: list[dict[str, Any]]) -> dict[str, int]:
    counted = dict.fromkeys(AGENT_STATES, 0)
    for agent in agents:
        counted[agent["state"]] = counted.get(agent["state"], 0) + 1
    return counted


_HANDLERS = {
    "conversation.opened": Figures._conversation_channel,
    "interaction.received": Figures._conversation_channel,
    "interaction.routed": Figures._routed,
    "interaction.moved": Figures._moved,
    "interaction.transferred": Figures._transferred,
    "interaction.offered": Figures._offered,
    "reservation.rejected": Figures._offer_gone,
    "reservation.expired": Figures._offer_gone,
    "reservation.revoked": Figures._offer_gone,
    "interaction.answered": Figures._answered,
    "interaction.abandoned": Figures._abandoned,
    "interaction.completed": Figures._completed,
    "conversation.closed": Figures._conversation_closed,
    "agent.state_changed": Figures._agent_state,
    "agent.call_started": Figures._call_started,
    "agent.call_ended": Figures._call_ended,
}
# The event types the figures fold: the watch binds its queue to these only (every other event would be carried
# to every API process, read and dropped).
FOLDED_TYPES = tuple(sorted(_HANDLERS))
