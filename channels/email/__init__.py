"""Email: an SMTP intake for our domains (`smtp`) and an IMAP poller for mailboxes elsewhere (`imap`); what a
mail says (`parsing`) and becomes (`intake`), what is kept of it (`mailbox`), agents' replies through a relay
(`relay`) and attachments for agents (`attachments`). `EmailChannel` is what the host registers."""

from __future__ import annotations

from collections.abc import Sequence

from channels import ChannelContext, ChannelParts, ChannelServer
from channels.email.attachments import AttachmentDownloads
from channels.email.imap import ImapPoller, mailboxes
from channels.email.mailbox import PostgresMailStore
from channels.email.relay import RelaySender
from channels.email.smtp import MailIntake, SmtpServer
from contactcenter.api.operations import Operation
from contactcenter.settings import Settings
from schema import Channel


class EmailChannel:
    """Mail in over SMTP, replies out through the relay."""

    @property
    def operations(self) -> Sequence[Operation]:
        return AttachmentDownloads.OPERATIONS

    def settings_problem(self, settings: Settings) -> str | None:
        return None  # its settings are checked where they are declared

    def parts(self, context: ChannelContext) -> ChannelParts:
        settings = context.settings
        mailbox = PostgresMailStore(context.pool)
        intake = MailIntake(settings, context.publisher, context.admission, context.metrics, mailbox)
        relay_url = settings.smtp_relay_url.get_secret_value() if settings.smtp_relay_url else None
        sender = RelaySender(
            relay_url,
            mailbox,
            tries=settings.smtp_relay_tries,
            default_domain=settings.mail_domains[0] if settings.mail_domains else "",
            quote_history=settings.mail_quote_history,
        )
        # Without domains of ours every recipient would be refused: no listener then (nor its port taken).
        servers: list[ChannelServer] = [SmtpServer(settings, intake)] if settings.mail_domains else []
        if settings.imap_mailboxes is not None:
            boxes = mailboxes(settings.imap_mailboxes.get_secret_value())
            servers.append(ImapPoller(boxes, intake, mailbox, settings.imap_poll_seconds))
        downloads = AttachmentDownloads(context.gatekeeper, mailbox)
        return ChannelParts(routes=downloads.routes(), intakes=servers, senders={Channel.EMAIL: sender})
