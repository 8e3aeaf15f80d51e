"""The TwiML of a call, built with the `twilio` package's `VoiceResponse` (never written by hand): the menu,
the queue and its waiting announcement, voicemail, and the `<Dial>` that connects a caller to an agent.

Every URL Twilio is told to call next lies under `/channels/twilio/voice` and is signed like every webhook."""

from __future__ import annotations

from urllib.parse import urlencode

from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

from schema.voice import VoiceEndpoint, VoiceMenu

BASE = "/channels/twilio/voice"
MENU_PATH = f"{BASE}/menu"
WAIT_PATH = f"{BASE}/wait"
LEAVE_PATH = f"{BASE}/leave"
QUEUE_PATH = f"{BASE}/queue"
RECORDED_PATH = f"{BASE}/recorded"
RECORDING_PATH = f"{BASE}/recording"
STATUS_PATH = f"{BASE}/status"
TRANSCRIPTION_PATH = f"{BASE}/transcription"
# On the status callback URL of a call we placed (click to call, a callback's call back).
PLACED_QUERY = "placed=1"
# The keys a waiting caller presses to leave a voicemail instead, or to be called back (keeping its place).
VOICEMAIL_KEY = "*"
CALLBACK_KEY = "#"
# Seconds of hold between two announcements of the caller's place.
WAIT_PAUSE_SECONDS = 20
# The longest a caller waits in a queue when no menu says otherwise.
DEFAULT_MAX_WAIT_SECONDS = 600
MENU_TIMEOUT_SECONDS = 5
VOICEMAIL_MAX_SECONDS = 120
SORRY = "Sorry, that is not one of the choices."
CLOSED = "We are closed right now. Please leave a message after the tone."
NOBODY_FREE = "Nobody is free to answer yet. Please leave a message after the tone."
THANKS = "Thank you. We will get back to you."
CALLING_BACK = "We will call you back at this number as soon as it is your turn. Goodbye."


class VoiceTwiml:
    """Builds each answer; `public_url` (CC_PUBLIC_URL) makes the URLs absolute, else they are relative to the
    webhook Twilio called, which Twilio resolves the same way."""

    def __init__(self, public_url: str | None) -> None:
        self._base = public_url.rstrip("/") if public_url else ""

    def url(self, path: str, **query: str | int) -> str:
        return self._base + path + (f"?{urlencode(query)}" if query else "")

    def menu(self, menu: VoiceMenu, *, menu_round: int = 1, again: bool = False) -> str:
        """The greeting (the first time), then the menu listening for a key or the words of an option; no answer:
        the call's webhook again, for the next round (each URL says which round it is, so the caller is not kept
        in the menu for ever)."""
        response = VoiceResponse()
        if again:
            response.say(SORRY)
        elif menu.greeting and menu_round == 1:
            response.say(menu.greeting)
        hints = ", ".join(word for option in menu.options for word in option.words)
        gather = Gather(
            input="dtmf speech",
            num_digits=1,
            action=self.url(MENU_PATH, round=menu_round),
            method="POST",
            timeout=MENU_TIMEOUT_SECONDS,
            **({"hints": hints} if hints else {}),
        )
        gather.say(menu.prompt)
        response.append(gather)
        response.redirect(self.url(BASE, round=menu_round + 1), method="POST")
        return str(response.to_xml())

    def enqueue(self, queue: str, *, greeting: str = "", max_wait_seconds: int) -> str:
        """Into the Twilio queue named after ours; its wait URL announces the caller's place, over and over."""
        response = VoiceResponse()
        if greeting:
            response.say(greeting)
        response.enqueue(
            queue,
            wait_url=self.url(WAIT_PATH, max_wait=max_wait_seconds),
            wait_url_method="POST",
            action=self.url(QUEUE_PATH),
            method="POST",
        )
        return str(response.to_xml())

    def waiting(self, position: int, *, past_max_wait: bool) -> str:
        """What a waiting caller hears: its place and how to leave a message; played again when it ends (that
        is how Twilio uses a wait URL). Past the queue's longest wait, the caller leaves for voicemail."""
        response = VoiceResponse()
        if past_max_wait:
            response.leave()
            return str(response.to_xml())
        gather = Gather(input="dtmf", num_digits=1, action=self.url(LEAVE_PATH), method="POST", timeout=1)
        gather.say(
            f"You are number {position} in line. To leave a message instead, press star."
            " To be called back when it is your turn, press pound."
        )
        response.append(gather)
        response.pause(length=WAIT_PAUSE_SECONDS)
        return str(response.to_xml())

    def leave(self) -> str:
        response = VoiceResponse()
        response.leave()
        return str(response.to_xml())

    def voicemail(self, announcement: str) -> str:
        response = VoiceResponse()
        response.say(announcement)
        response.record(
            action=self.url(RECORDED_PATH),
            method="POST",
            max_length=VOICEMAIL_MAX_SECONDS,
            recording_status_callback=self.url(RECORDING_PATH),
            recording_status_callback_method="POST",
            recording_status_callback_event="completed",
            transcribe=True,
            transcribe_callback=self.url(TRANSCRIPTION_PATH),
        )
        return str(response.to_xml())

    def goodbye(self, words: str = THANKS) -> str:
        response = VoiceResponse()
        response.say(words)
        response.hangup()
        return str(response.to_xml())

    def empty(self) -> str:
        return str(VoiceResponse().to_xml())


def dial(endpoint: VoiceEndpoint) -> str:
    """The TwiML that rings the agent: its Twilio Client identity, phone number or SIP address."""
    target = Dial()
    if endpoint.kind == "client":
        target.client(endpoint.address)
    elif endpoint.kind == "sip":
        target.sip(endpoint.address)
    else:
        target.number(endpoint.address)
    return str(VoiceResponse().append(target).to_xml())


def dial_number(number: str, caller_id: str) -> str:
    """The TwiML of an agent's call out: once the agent's leg answers, the client's number rings, showing ours."""
    target = Dial(caller_id=caller_id)
    target.number(number)
    return str(VoiceResponse().append(target).to_xml())


def endpoint_address(endpoint: VoiceEndpoint) -> str:
    """The endpoint as the `To` of a call Twilio places: `client:<identity>`, a SIP URI or a number."""
    return f"client:{endpoint.address}" if endpoint.kind == "client" else endpoint.address


def client_identity(agent_id: object) -> str:
    """The Twilio Client identity of an agent without an endpoint of its own: the one its access token names."""
    return f"agent-{agent_id}"
