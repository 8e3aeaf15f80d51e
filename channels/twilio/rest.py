"""Sends SMS through Twilio's REST API (`CC_TWILIO_API_BASE`; tests point it at a local fake)."""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping

import aiohttp

from contactcenter.agents.outbound import OutboundMessage
from contactcenter.errors import Invalid, Unavailable
from schema import IdentityKind

log = logging.getLogger(__name__)

SEND_TIMEOUT = aiohttp.ClientTimeout(total=10)


def account_url(api_base: str, account_sid: str) -> str:
    """The account's resources on Twilio's REST API (or the stand-in at `CC_TWILIO_API_BASE`)."""
    return f"{api_base.rstrip('/')}/2010-04-01/Accounts/{account_sid}"


def basic_auth(account_sid: str, auth_token: str) -> dict[str, str]:
    """HTTP Basic auth with the account SID and auth token, as Twilio documents."""
    credentials = base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()
    return {"Authorization": f"Basic {credentials}"}


class TwilioSmsSender:
    # Twilio's own bound on a message's body: it refuses longer ones.
    max_length = 1600
    address_kind = IdentityKind.PHONE

    def __init__(
        self,
        http: aiohttp.ClientSession,
        *,
        api_base: str,
        account_sid: str,
        auth_token: str,
        status_callback: Mapping[str, str] | None = None,
    ) -> None:
        self._http = http
        self._url = f"{account_url(api_base, account_sid)}/Messages.json"
        self._headers = basic_auth(account_sid, auth_token)
        # Asks Twilio to report whether each message was delivered (`channels.twilio.sms_status`).
        self._status_callback = dict(status_callback or {})

    async def send(self, message: OutboundMessage) -> str:
        if len(message.body) > self.max_length:
            raise Invalid(f"an SMS carries at most {self.max_length} characters", field="text")
        form = {"To": message.to_address, "From": message.from_address, "Body": message.body, **self._status_callback}
        try:
            async with self._http.post(self._url, data=form, headers=self._headers, timeout=SEND_TIMEOUT) as response:
                answer = await response.json(content_type=None)
                status = response.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise Unavailable(f"Twilio could not be reached: {type(exc).__name__}") from exc
        if status >= 500 or status in (401, 429):
            log.warning("Twilio refused a message with HTTP %s", status)
            raise Unavailable(f"Twilio answered HTTP {status}; try again")
        if status >= 400 or not isinstance(answer, dict) or "sid" not in answer:
            detail = answer.get("message", "") if isinstance(answer, dict) else ""
            raise Invalid(f"Twilio refused the message: {detail or status}", field="text")
        sid: str = answer["sid"]
        return sid
