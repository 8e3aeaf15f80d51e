"""Web chat: the visitor's socket (`visitors`), its frames (`frames`), the signed token that resumes a visitor
(`tokens`), each visitor's numbered transcript (`transcript`), agents' replies to it (`replies`) and the widget
another site embeds (`page`). `WebChatChannel` is what the host registers."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from datetime import timedelta

from channels import ChannelContext, ChannelParts
from channels.webchat.hours import OpeningHours
from channels.webchat.page import WidgetFiles
from channels.webchat.replies import ChatReplySender
from channels.webchat.tokens import VisitorTokens
from channels.webchat.transcript import Transcript
from channels.webchat.verification import CodeMailer, EmailProof, NoMailer, SmtpCodeMailer
from channels.webchat.visitors import VisitorSockets
from contactcenter.api.operations import Operation
from contactcenter.origins import web_origins
from contactcenter.settings import Settings
from schema import Channel

log = logging.getLogger(__name__)


class WebChatChannel:
    """Chat visitors on their socket; agents' replies to them."""

    @property
    def operations(self) -> Sequence[Operation]:
        return (*WidgetFiles.OPERATIONS, *VisitorSockets.OPERATIONS)

    def settings_problem(self, settings: Settings) -> str | None:
        try:
            OpeningHours.parse(settings.chat_hours, settings.chat_timezone)
        except ValueError as exc:
            return f"CC_CHAT_HOURS: {exc}"
        return None

    def parts(self, context: ChannelContext) -> ChannelParts:
        settings = context.settings
        if settings.chat_secret is None:
            log.warning("CC_CHAT_SECRET is not set: chat visitors' tokens last as long as this process")
            secret = secrets.token_urlsafe(32)
        else:
            secret = settings.chat_secret.get_secret_value()
        transcript = Transcript(context.pool)
        visitors = VisitorSockets(
            settings,
            tokens=VisitorTokens(secret, timedelta(days=settings.chat_token_days)),
            transcript=transcript,
            publisher=context.publisher,
            admission=context.admission,
            notices=context.socket_notices("visitor"),
            presence=context.presence,
            staffing=context.staffing,
            rate=context.rate_limit("chat", settings.chat_frames_per_minute, settings.chat_frame_burst),
            proof=EmailProof(context.pool, _code_mailer(settings), context.proved_identities),
            hours=OpeningHours.parse(settings.chat_hours, settings.chat_timezone),
            allowed_origins=web_origins(settings),
        )
        return ChannelParts(
            routes=[*WidgetFiles().routes(), *visitors.routes()],
            servers=[visitors],
            senders={Channel.CHAT: ChatReplySender(transcript, visitors)},
            parties={Channel.CHAT: visitors},
            disconnects=[visitors.disconnect],
        )


def _code_mailer(settings: Settings) -> CodeMailer:
    if settings.smtp_relay_url is None:
        return NoMailer()
    sender = f"no-reply@{settings.mail_domains[0]}" if settings.mail_domains else "no-reply@localhost"
    return SmtpCodeMailer(settings.smtp_relay_url.get_secret_value(), sender)
