"""The pages in a real browser (Debian's chromium through Playwright): the wallboard's waiting count rises with an
SMS and falls when the agent console, signed in with the agent's token, accepts the offer with the card shown; a
phone call shows its state on the console (ringing, connecting, in progress, ended with its duration) and the
agent on it shows busy on the wallboard, then in wrap-up until the agent says it is ready.
Screenshots go to `test-artifacts/` (ignored by git); any console error fails the test."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright, expect

from contactcenter.settings import Settings
from tests.e2e.test_voice import CALLER, MENU, VOICE, call, call_to_queue, put_menu
from tests.running import FakeTwilioApi, RunningService, run_service

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SENDER = "+14155550134"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


class Watched:
    """A page whose console errors and uncaught exceptions are kept, to fail the test on any."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)


async def open_page(browser: Browser, url: str) -> Watched:
    context = await browser.new_context(viewport={"width": 1366, "height": 768})
    watched = Watched(await context.new_page())
    await watched.page.goto(url)
    return watched


async def sign_in(page: Page, token: str) -> None:
    # With the keyboard only: the token field has the focus path a person would take.
    await page.get_by_label("token").focus()
    await page.keyboard.type(token)
    await page.keyboard.press("Enter")


async def test_the_console_accepts_an_sms_offer_with_the_card_and_the_wallboard_waiting_rises_and_falls(
    service: RunningService, browser: Browser
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await service.create_queue("sales", ["sms"])
    agent = await service.create_agent("Ann", ["sales"])
    boss = await service.create_supervisor("Sue", ["sales"])

    wallboard = await open_page(browser, f"{service.base_url}/supervisor")
    await sign_in(wallboard.page, boss["token"])
    waiting = wallboard.page.locator('[data-queue="sales"] [data-figure="waiting"]')
    await expect(waiting).to_have_text("0", timeout=15_000)
    await expect(wallboard.page.locator("#connection")).to_have_text("live")

    assert (await service.post_sms(sender=SENDER, body="Is my car ready?")).status == 200
    await expect(waiting).to_have_text("1", timeout=15_000)
    await wallboard.page.screenshot(path=ARTIFACTS / "wallboard-waiting.png", full_page=True)

    console = await open_page(browser, f"{service.base_url}/agent")
    await sign_in(console.page, agent["token"])
    await expect(console.page.locator("#connection")).to_have_text("connected", timeout=15_000)
    await console.page.get_by_role("button", name="Available").click()
    offer = console.page.get_by_role("alertdialog")
    await expect(offer).to_contain_text("Is my car ready?", timeout=15_000)
    await expect(console.page.locator("#identities")).to_contain_text(SENDER)
    await expect(console.page.locator("#timeline")).to_contain_text("Is my car ready?")
    await console.page.screenshot(path=ARTIFACTS / "console-offer.png", full_page=True)

    await console.page.keyboard.press("a")  # accept, from the keyboard
    await expect(offer).to_be_hidden()
    await expect(console.page.locator("#messages")).to_contain_text("Is my car ready?")
    await expect(waiting).to_have_text("0", timeout=15_000)
    await console.page.screenshot(path=ARTIFACTS / "console-accepted.png", full_page=True)
    await wallboard.page.screenshot(path=ARTIFACTS / "wallboard-answered.png", full_page=True)

    assert wallboard.errors == [] and console.errors == []


async def test_the_console_transfers_a_conversation_to_another_queue_and_the_wallboard_shows_it_waiting_there(
    service: RunningService, browser: Browser
) -> None:
    await service.create_queue("sales", ["sms"])
    await service.create_queue("service", ["sms"])
    agent = await service.create_agent("Ann", ["sales"])
    boss = await service.create_supervisor("Sue", ["sales", "service"])
    wallboard = await open_page(browser, f"{service.base_url}/supervisor")
    await sign_in(wallboard.page, boss["token"])
    waiting = wallboard.page.locator('[data-queue="service"] [data-figure="waiting"]')
    await expect(waiting).to_have_text("0", timeout=15_000)

    console = await open_page(browser, f"{service.base_url}/agent")
    await sign_in(console.page, agent["token"])
    await expect(console.page.locator("#connection")).to_have_text("connected", timeout=15_000)
    await console.page.get_by_role("button", name="Available").click()
    assert (await service.post_sms(sender=SENDER, body="My brakes squeal.")).status == 200
    await expect(console.page.get_by_role("alertdialog")).to_contain_text("My brakes squeal.", timeout=15_000)
    await console.page.keyboard.press("a")
    await expect(console.page.locator("#messages")).to_contain_text("My brakes squeal.")

    await console.page.get_by_label("Transfer to queue").fill("service")
    await console.page.get_by_role("button", name="Transfer").click()
    await expect(console.page.locator("#notice")).to_have_text("transferred to service", timeout=15_000)
    await expect(console.page.locator("#conversation")).to_be_hidden()
    await expect(waiting).to_have_text("1", timeout=15_000)
    assert wallboard.errors == [] and console.errors == []


async def test_the_console_shows_a_phone_calls_state_and_the_wallboard_the_agent_on_it_then_in_wrap_up(
    service_settings: Settings, fake_twilio: FakeTwilioApi, browser: Browser
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    async with run_service(service_settings.model_copy(update={"wrap_up_seconds": 600})) as service:
        await service.create_queue("sales", ["voice"])
        await put_menu(service, MENU)
        agent = await service.create_agent("Ann", ["sales"])
        boss = await service.create_supervisor("Sue", ["sales"])
        wallboard = await open_page(browser, f"{service.base_url}/supervisor")
        await sign_in(wallboard.page, boss["token"])
        ann_state = wallboard.page.locator('[data-agent="Ann"] [data-field="state"]')
        console = await open_page(browser, f"{service.base_url}/agent")
        await sign_in(console.page, agent["token"])
        await expect(console.page.locator("#connection")).to_have_text("connected", timeout=15_000)
        await console.page.get_by_role("button", name="Available").click()
        await expect(console.page.locator("#state")).to_have_text("you are available", timeout=15_000)

        connecting = asyncio.Event()
        may_connect = asyncio.Event()

        async def hold(_call_sid: str) -> None:  # Twilio takes its time to connect the call
            connecting.set()
            await may_connect.wait()

        fake_twilio.before_call_update = hold
        sid = "CA" + uuid.uuid4().hex
        await call_to_queue(service, sid, "1")
        phone = console.page.locator("#call-state")
        await expect(phone).to_have_text(f"Incoming call from {CALLER} — ringing", timeout=15_000)
        await console.page.screenshot(path=ARTIFACTS / "console-call-ringing.png", full_page=True)

        await console.page.keyboard.press("a")
        await expect(phone).to_have_text(f"Connecting the call from {CALLER}…")
        await asyncio.wait_for(connecting.wait(), 15)
        await console.page.screenshot(path=ARTIFACTS / "console-call-connecting.png", full_page=True)
        may_connect.set()
        await expect(phone).to_contain_text(f"On the call from {CALLER} — 0:", timeout=15_000)
        await expect(console.page.locator("#call")).to_have_attribute("data-call-state", "in_progress")
        await expect(ann_state).to_contain_text("busy · on a call", timeout=15_000)
        await console.page.screenshot(path=ARTIFACTS / "console-call-in-progress.png", full_page=True)
        await wallboard.page.screenshot(path=ARTIFACTS / "wallboard-agent-on-a-call.png", full_page=True)

        assert (await call(service, f"{VOICE}/status", sid, status="completed", CallDuration="7")).status == 200
        await expect(phone).to_contain_text(f"Call ended from {CALLER} — lasted 0:", timeout=15_000)
        await expect(ann_state).to_have_text("busy", timeout=15_000)  # off the call, still on its conversation
        await console.page.screenshot(path=ARTIFACTS / "console-call-ended.png", full_page=True)

        await console.page.get_by_role("button", name="Wrap up").click()
        await expect(console.page.locator("#state")).to_contain_text("you are in wrap-up until", timeout=15_000)
        await expect(ann_state).to_have_text("wrap_up", timeout=15_000)
        await console.page.screenshot(path=ARTIFACTS / "console-wrap-up.png", full_page=True)
        await wallboard.page.screenshot(path=ARTIFACTS / "wallboard-wrap-up.png", full_page=True)
        await console.page.get_by_role("button", name="Ready").click()
        await expect(console.page.locator("#state")).to_have_text("you are available", timeout=15_000)
        await expect(ann_state).to_have_text("available", timeout=15_000)

        assert wallboard.errors == [] and console.errors == []
        for page in (wallboard, console):  # their stream and socket closed before the service stops
            await page.page.context.close()
