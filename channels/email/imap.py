"""The IMAP poller (`aioimaplib`): a second intake for companies whose mail lives elsewhere. Every
CC_IMAP_POLL_SECONDS it takes from each configured mailbox the messages past the last UID it took, one by
one, through the same intake as SMTP (parse, store, publish), and only then records that UID in PostgreSQL —
so a restart never skips a message; one taken in again after a crash is the same Message-ID, stored once. A
new UIDVALIDITY (the mailbox was rebuilt) starts from its first message, for the same reason safely.
Messages are read with BODY.PEEK: the mailbox is left as it was (nothing marked seen, moved or deleted).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import aioimaplib

from channels.email.mailbox import MailStore
from channels.email.smtp import MailIntake
from contactcenter.errors import Unavailable

log = logging.getLogger(__name__)

COMMAND_TIMEOUT = 30.0
# Messages taken from one mailbox per poll: the rest wait for the next (a large backlog does not hold the rest).
BATCH = 200
_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]")


@dataclass(frozen=True)
class Mailbox:
    secure: bool
    host: str
    port: int
    user: str
    password: str
    folder: str

    @property
    def key(self) -> str:
        """Names the mailbox in PostgreSQL and in logs: never the password."""
        return f"{self.user}@{self.host}:{self.port}/{self.folder}"

    @property
    def address(self) -> str:
        """Whom its mail is for: the user when it is an address."""
        return self.user if "@" in self.user else ""


def mailboxes(urls: str) -> list[Mailbox]:
    """CC_IMAP_MAILBOXES: comma-separated `imap[s]://user:password@host[:port]/Folder` (folder INBOX if none)."""
    found = []
    for url in filter(None, (u.strip() for u in urls.split(","))):
        parts = urlsplit(url)
        secure = parts.scheme == "imaps"
        found.append(
            Mailbox(
                secure=secure,
                host=parts.hostname or "",
                port=parts.port or (993 if secure else 143),
                user=unquote(parts.username or ""),
                password=unquote(parts.password or ""),
                folder=unquote(parts.path.lstrip("/")) or "INBOX",
            )
        )
    return found


class ImapPoller:
    """A `ChannelServer`: polls its mailboxes from `start()` until `stop()`."""

    def __init__(self, boxes: list[Mailbox], intake: MailIntake, mailbox_store: MailStore, every: float) -> None:
        self._boxes = boxes
        self._intake = intake
        self._store = mailbox_store
        self._every = every
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # aioimaplib logs every command and answer at DEBUG: the messages' contents among them.
        logging.getLogger("aioimaplib.aioimaplib").setLevel(logging.WARNING)
        self._stopping.clear()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while not self._stopping.is_set():
            for box in self._boxes:
                try:
                    taken = await self.poll(box)
                except (aioimaplib.AioImapException, OSError, TimeoutError, Unavailable) as exc:
                    log.warning("IMAP mailbox %s not polled: %s", box.key, type(exc).__name__)
                    continue
                if taken:
                    log.info("IMAP mailbox %s: %d messages taken in", box.key, taken)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._every)

    async def poll(self, box: Mailbox) -> int:
        """Take in what is new in `box`; answer how many messages were taken."""
        client: aioimaplib.IMAP4 = (
            aioimaplib.IMAP4_SSL(host=box.host, port=box.port, timeout=COMMAND_TIMEOUT)
            if box.secure
            else aioimaplib.IMAP4(host=box.host, port=box.port, timeout=COMMAND_TIMEOUT)
        )
        await client.wait_hello_from_server()
        try:
            _ok(await client.login(box.user, box.password), "LOGIN")
            selected = _ok(await client.select(box.folder), "SELECT")
            uidvalidity = _uidvalidity(selected.lines)
            cursor = await self._store.imap_cursor(box.key)
            last = cursor[1] if cursor is not None and cursor[0] == uidvalidity else 0
            found = _ok(await client.uid_search(f"UID {last + 1}:*", charset=None), "UID SEARCH")
            # `n:*` names the last message even when its UID is below n: only those past `last` are new.
            uids = sorted(int(u) for line in found.lines[:-1] for u in line.split() if int(u) > last)[:BATCH]
            for uid in uids:
                fetched = _ok(await client.uid("fetch", str(uid), "(BODY.PEEK[])"), "UID FETCH")
                raw = next((bytes(line) for line in fetched.lines if isinstance(line, bytearray)), None)
                if raw is not None:  # expunged meanwhile: nothing to take
                    await self._intake.take_in(raw, envelope_sender="", recipients=[box.address] if box.address else [])
                await self._store.advance_imap_cursor(box.key, uidvalidity, uid)
            return len(uids)
        finally:
            with contextlib.suppress(aioimaplib.AioImapException, OSError, TimeoutError):
                await client.logout()


def _ok(response: aioimaplib.Response, command: str) -> aioimaplib.Response:
    if response.result != "OK":
        raise aioimaplib.Error(f"{command} answered {response.result}")
    return response


def _uidvalidity(lines: list[bytes]) -> int:
    for line in lines:
        found = _UIDVALIDITY.search(bytes(line))
        if found:
            return int(found.group(1))
    raise aioimaplib.Error("SELECT named no UIDVALIDITY")
