"""`contactcenter demo`: a car dealership to look at — sales, service and questions queues, a few agents and a
supervisor, clients with a history across channels — loaded once into the configured database. The tokens are
printed and kept in `<CC_DATA_DIR>/demo.json` (for `contactcenter simulate`, and to print them again)."""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from channels.twilio.voice_store import VoiceStore
from contactcenter.store.directory import Directory
from schema import AgentCreate, QueueCreate
from schema.interactions import Channel
from schema.voice import MenuOption, VoiceMenu

# Contacts on a channel go to the oldest queue serving it: sales takes SMS and chat, service email and calls;
# questions serves every channel, for what a menu or a supervisor sends there.
QUEUES = (
    QueueCreate(name="sales", channels=[Channel.SMS, Channel.CHAT], service_level_seconds=20),
    QueueCreate(name="service", channels=[Channel.EMAIL, Channel.VOICE], service_level_seconds=60),
    QueueCreate(name="questions", channels=list(Channel), service_level_seconds=30, service_level_goal=0.7),
)
AGENTS = (
    AgentCreate(name="Ann Sales", queues=["sales", "questions"]),
    AgentCreate(name="Bob Sales", queues=["sales"]),
    AgentCreate(name="Carla Service", queues=["service", "questions"]),
    AgentCreate(name="Dan Service", queues=["service"]),
)
SUPERVISOR = AgentCreate(name="Sue Floor", queues=["sales", "service", "questions"])
# name, phone, email, and what they said before (channel, inbound?, text, days ago)
PastContact = tuple[str, bool, str, int]
CLIENTS: tuple[tuple[str, str, str, list[PastContact]], ...] = (
    ("Maria Lopez", "+14155550101", "maria.lopez@example.com", [
        ("sms", True, "Hi, is the blue hatchback still on the lot?", 12),
        ("sms", False, "Yes! Want to book a test drive?", 12),
        ("email", True, "Could you send the finance options for the hatchback?", 10),
    ]),
    ("James Chen", "+14155550102", "james.chen@example.com", [
        ("email", True, "My SUV is due for its 30,000-mile service.", 30),
        ("email", False, "Booked for Tuesday 9am, see you then.", 29),
        ("sms", True, "Running 10 minutes late for the service appointment", 22),
    ]),
    ("Priya Natarajan", "+14155550103", "priya.n@example.com", [
        ("sms", True, "Do you take trade-ins?", 3),
        ("sms", False, "We do, bring it by for a free appraisal.", 3),
    ]),
    ("Tom Becker", "+14155550104", "tom.becker@example.com", [
        ("email", True, "The check-engine light came back on after the repair.", 7),
        ("sms", True, "Any update on my car?", 6),
        ("sms", False, "It's ready, you can pick it up after 4pm.", 6),
    ]),
    ("Aiko Tanaka", "+14155550105", "aiko.tanaka@example.com", []),
)  # fmt: skip

NEW_CLIENT = "INSERT INTO clients (id, display_name, created_at) VALUES ($1, $2, $3)"
NEW_IDENTITY = "INSERT INTO identities (kind, value, client_id, verified) VALUES ($1, $2, $3, true)"
PAST_CONVERSATION = """
INSERT INTO conversations (id, client_id, channel, queue_id, agent_id, state, opened_at, closed_at)
VALUES ($1, $2, $3, $4, $5, 'closed', $6::timestamptz, $6::timestamptz + interval '10 minutes')
"""
PAST_INTERACTION = """
INSERT INTO interactions (id, channel, direction, provider_id, client_id, conversation_id, from_address, to_address,
                          from_verified, body, received_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, true, $9, $10)
"""
DEALER_PHONE = "+15005550006"
# What a caller to the dealer's number hears: press (or say) to reach sales or service.
MENU = VoiceMenu(
    greeting="Welcome to Example Motors.",
    prompt="For sales press 1 or say sales. For service press 2 or say service.",
    options=[
        MenuOption(digit="1", words=["sales"], queue="sales"),
        MenuOption(digit="2", words=["service"], queue="service"),
    ],
    max_wait_seconds=300,
)
DEALER_MAIL = "hello@dealer.example"


@dataclass
class DemoPeople:
    """Who the demo made, with their tokens (shown once by the API: kept here for the demo's own use)."""

    agents: dict[str, str] = field(default_factory=dict)  # name → token
    supervisor: str = ""
    loaded_at: str = ""


def demo_file(data_dir: Path) -> Path:
    return data_dir / "demo.json"


def read_people(data_dir: Path) -> DemoPeople | None:
    path = demo_file(data_dir)
    if not path.exists():
        return None
    return DemoPeople(**json.loads(path.read_text("utf-8")))


def keep_people(data_dir: Path, people: DemoPeople) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    demo_file(data_dir).write_text(json.dumps(asdict(people), indent=2), "utf-8")


async def load_demo(pool: asyncpg.Pool, directory: Directory, known: DemoPeople | None) -> DemoPeople:
    """Load the dealership unless its queues exist already and its people were kept (`known`: then they are
    answered again)."""
    existing = set((await directory.queues()).values())
    if "sales" in existing and known is not None:
        return known
    for queue in QUEUES:
        if queue.name not in existing:
            await directory.create_queue(queue)
    people = DemoPeople(loaded_at=datetime.now(UTC).isoformat())
    for agent in AGENTS:
        people.agents[agent.name] = (await directory.create_agent(agent)).token
    people.supervisor = (await directory.create_supervisor(SUPERVISOR)).token
    await _clients_with_history(pool, {name: qid for qid, name in (await directory.queues()).items()})
    await VoiceStore(pool).save_menu(DEALER_PHONE, MENU)
    return people


async def _clients_with_history(pool: asyncpg.Pool, queues: dict[str, uuid.UUID]) -> None:
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        for name, phone, email, history in CLIENTS:
            if await conn.fetchval("SELECT 1 FROM identities WHERE kind = 'phone' AND value = $1", phone):
                continue
            client = uuid.uuid4()
            await conn.execute(NEW_CLIENT, client, name, now - timedelta(days=60))
            await conn.execute(NEW_IDENTITY, "phone", phone, client)
            await conn.execute(NEW_IDENTITY, "email", email, client)
            for channel, inbound, text, days_ago in history:
                when = now - timedelta(days=days_ago)
                conversation = uuid.uuid4()
                queue = queues["sales" if channel == "sms" else "service"]
                await conn.execute(PAST_CONVERSATION, conversation, client, channel, queue, None, when)
                ours, theirs = (DEALER_PHONE, phone) if channel == "sms" else (DEALER_MAIL, email)
                sender, receiver = (theirs, ours) if inbound else (ours, theirs)
                await conn.execute(
                    PAST_INTERACTION,
                    uuid.uuid4(),
                    channel,
                    "inbound" if inbound else "outbound",
                    f"demo-{uuid.uuid4().hex}",
                    client,
                    conversation,
                    sender,
                    receiver,
                    text,
                    when,
                )


def describe(people: DemoPeople, base_url: str) -> str:
    lines = [
        f"demo center loaded ({people.loaded_at})",
        f"  wallboard      {base_url}/supervisor   supervisor token: {people.supervisor}",
        f"  agent console  {base_url}/agent",
    ]
    lines += [f"    {name:<14} token: {token}" for name, token in people.agents.items()]
    lines.append("  then: contactcenter simulate   (traffic on every channel, and agents answering it)")
    return "\n".join(lines)
