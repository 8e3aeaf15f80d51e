"""A real IMAP server for the tests: Debian's dovecot (`dovecot-imapd`, which `.ci/run` installs when missing)
on a free loopback port with a configuration of its own in a temporary folder, so it clashes with nothing.
A missing dovecot fails the test: nothing is skipped."""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import os
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from bench.ports import free_port

DOVECOT = "/usr/sbin/dovecot"
# Mail is stored as nobody: dovecot will not run a mail process as root.
MAIL_UID = MAIL_GID = 65534
USER, PASSWORD = "support@shop.example", "imap-secret"

CONFIG = """
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = 100
mail_location = maildir:{root}/home/%u/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
"""


@dataclass
class ImapServer:
    port: int

    def url(self, folder: str = "INBOX") -> str:
        return f"imap://{USER.replace('@', '%40')}:{PASSWORD}@127.0.0.1:{self.port}/{folder}"

    def _client(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4("127.0.0.1", self.port, timeout=30)
        client.login(USER, PASSWORD)
        return client

    def _append(self, folder: str, raw: bytes) -> None:
        client = self._client()
        try:
            status, _ = client.append(folder, None, None, raw)
            assert status == "OK"
        finally:
            client.logout()

    async def deliver(self, raw: bytes, folder: str = "INBOX") -> None:
        """What the company's mail server does: a message lands in the mailbox."""
        await asyncio.to_thread(self._append, folder, raw)

    def _recreate(self, folder: str) -> None:
        client = self._client()
        try:
            client.delete(folder)
            assert client.create(folder)[0] == "OK"
        finally:
            client.logout()

    async def recreate(self, folder: str) -> None:
        """Delete and create the folder again: it gets a new UIDVALIDITY."""
        await asyncio.to_thread(self._recreate, folder)


def _prepared() -> tuple[Path, int]:
    """A folder with dovecot's configuration, its users and the mail's home; the port it will listen on."""
    assert os.path.exists(DOVECOT), "dovecot is not installed: apt-get install dovecot-imapd (.ci/run does)"
    root = Path(tempfile.mkdtemp(prefix="cc-dovecot-"))
    root.chmod(0o755)  # the mail process (nobody) goes through it
    (root / "home").mkdir()
    os.chown(root / "home", MAIL_UID, MAIL_GID)
    (root / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
    port = free_port()
    (root / "dovecot.conf").write_text(CONFIG.format(root=root, port=port, uid=MAIL_UID, gid=MAIL_GID))
    return root, port


def _log_tail(root: Path) -> str:
    return (root / "dovecot.log").read_text(errors="replace")[-2000:]


@contextlib.asynccontextmanager
async def running_dovecot() -> AsyncIterator[ImapServer]:
    root, port = _prepared()
    process = await asyncio.create_subprocess_exec(
        DOVECOT, "-F", "-c", str(root / "dovecot.conf"), stdout=asyncio.subprocess.DEVNULL
    )
    try:
        async with asyncio.timeout(30):
            while True:
                assert process.returncode is None, _log_tail(root)
                with contextlib.suppress(OSError):
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                    writer.close()
                    break
                await asyncio.sleep(0.1)
        yield ImapServer(port)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await process.wait()
        shutil.rmtree(root, ignore_errors=True)
