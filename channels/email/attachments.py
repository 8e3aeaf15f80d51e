"""`GET /api/v1/email/attachments/{attachment_id}`: an inbound mail's attachment, for the admin and the agent
the mail's conversation is assigned to (404 for anyone else: its existence is not confirmed), with the content
type the sender gave it — always as a download, never rendered on our origin. Ids are random."""

from __future__ import annotations

import uuid
from urllib.parse import quote

from aiohttp import web

from channels import Gatekeeper
from channels.email.mailbox import MailStore
from contactcenter.api.operations import Access, Answer, Operation, Parameter, failures
from contactcenter.errors import Invalid, NotFound

DOWNLOAD = Operation(
    "GET",
    "/api/v1/email/attachments/{attachment_id}",
    "downloadEmailAttachment",
    "An attachment of an inbound mail, as the sender's content type (the agent's body of the mail links it)",
    {
        200: Answer(
            "the attachment's bytes",
            media_type="application/octet-stream",
            schema={"type": "string", "format": "binary"},
            headers={"Content-Disposition": "attachment, with the sender's file name"},
        ),
        **failures(
            400,
            401,
            403,
            404,
            503,
            reasons={404: "no such attachment, none of the caller's conversations, or past the size kept"},
        ),
    },
    access=Access.STAFF,
    parameters=(
        Parameter("attachment_id", "path", "the attachment's id", schema={"type": "string", "format": "uuid"}),
    ),
)


class AttachmentDownloads:
    OPERATIONS = (DOWNLOAD,)

    def __init__(self, auth: Gatekeeper, mailbox: MailStore) -> None:
        self._auth = auth
        self._mailbox = mailbox

    def routes(self) -> list[web.RouteDef]:
        return [DOWNLOAD.route(self.download)]

    async def download(self, request: web.Request) -> web.Response:
        actor = await self._auth.require_staff_actor(request)
        agent_id = None if actor == "admin" else uuid.UUID(actor.removeprefix("agent:"))
        try:
            attachment_id = uuid.UUID(request.match_info["attachment_id"])
        except ValueError:
            raise Invalid("the attachment id is not a UUID", field="attachment_id") from None
        attachment = await self._mailbox.attachment(attachment_id, agent_id)
        if attachment.content is None:
            raise NotFound("this attachment was larger than the size kept", field="attachment_id")
        return web.Response(
            body=attachment.content,
            content_type=attachment.content_type,
            headers={
                "Content-Disposition": f"attachment; filename*=UTF-8''{quote(attachment.filename, safe='')}",
                # What a customer sent is never run in the staff's browser as ours.
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "sandbox",
            },
        )
