"""The chat widget in a real Chromium (Debian's, driven by Playwright): the page sends a message, an agent on the
desktop socket accepts and answers, the page shows the answer; after a reload the conversation is still there.
Screenshots go to `test-artefacts/webchat/` (git-ignored)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web
from playwright.async_api import Browser, Page, async_playwright, expect

from contactcenter.settings import Settings
from tests.running import RunningService, run_service

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTEFACTS = Path(__file__).resolve().parents[2] / "test-artefacts" / "webchat"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


async def _leave(browser: Browser) -> None:
    """Every visitor closes its page (and with it the widget's socket)."""
    for context in browser.contexts:
        for page in context.pages:
            await page.close()


async def _snapshot(page: Page, name: str) -> None:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTEFACTS / f"{name}.png"))


async def test_the_widget_page_chats_with_an_agent_and_a_reload_keeps_the_conversation(
    service: RunningService, browser: Browser
) -> None:
    await service.create_queue("web", ["chat"])
    desktop = await service.available_agent(queues=("web",))
    page = await browser.new_page()
    await page.goto(f"{service.base_url}/chat")
    await expect(page.get_by_role("status")).to_have_text("Connected. An agent will answer here.")

    message = page.get_by_label("Your message")
    await message.fill("Hello from the browser")
    await message.press("Enter")
    offer = await desktop.receive("offer")
    assert offer["reservation"]["interaction"]["body"] == "Hello from the browser"
    await desktop.command({"type": "accept", "reservation_id": offer["reservation"]["id"]}, "accepted")
    log = page.get_by_role("log")
    await expect(log.locator("li.ccw-note")).to_have_text("Ann joined the chat.")
    conversation_id = offer["reservation"]["conversation_id"]
    await desktop.send({"type": "typing", "conversation_id": conversation_id})
    await expect(page.get_by_role("status")).to_have_text("Ann is typing…")
    await desktop.command({"type": "reply", "conversation_id": conversation_id, "text": "Hi, Ann here."}, "replied")

    await expect(log.locator("li.ccw-agent")).to_have_text("Agent: Hi, Ann here.")
    await expect(log.locator("li.ccw-visitor:not(.ccw-pending)")).to_have_text("You: Hello from the browser")
    await _snapshot(page, "answered")

    await page.reload()
    await expect(page.get_by_role("status")).to_have_text("Connected. An agent will answer here.")
    await expect(log.locator("li")).to_have_text(["You: Hello from the browser", "Agent: Hi, Ann here."])
    await _snapshot(page, "reloaded")

    # On a phone's screen the panel takes the whole screen, and the keyboard alone sends.
    await page.set_viewport_size({"width": 375, "height": 667})
    box = await page.get_by_role("dialog").bounding_box()
    assert box is not None and (box["width"], box["height"]) == (375, 667)
    await message.focus()
    await page.keyboard.type("Typed on a phone")
    await page.keyboard.press("Enter")
    assert (await desktop.receive("customer"))["activity"] == "typing"  # the widget said so as the keys went
    assert (await desktop.receive("message"))["interaction"]["body"] == "Typed on a phone"
    await expect(log.locator("li.ccw-visitor:not(.ccw-pending)")).to_have_count(2)
    await _snapshot(page, "phone")
    await desktop.close()


def _free_socket() -> tuple[socket.socket, str]:
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    return listening, f"http://127.0.0.1:{listening.getsockname()[1]}"


async def _embedding_site(listening: socket.socket, service_url: str) -> web.AppRunner:
    """Another site on loopback whose page embeds the widget with one script tag."""
    html = (
        '<!doctype html><html lang="en"><title>Shop</title><h1>Shop</h1>'
        f'<script src="{service_url}/chat/widget.js"></script>'
    )

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=html, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.SockSite(runner, listening).start()
    return runner


async def test_one_script_tag_embeds_the_widget_on_an_allowed_site_and_not_on_another(
    service_settings: Settings, browser: Browser
) -> None:
    allowed_socket, allowed_url = _free_socket()
    other_socket, other_url = _free_socket()
    settings = service_settings.model_copy(update={"allowed_origins": [allowed_url]})
    async with run_service(settings) as service:
        allowed = await _embedding_site(allowed_socket, service.base_url)
        other = await _embedding_site(other_socket, service.base_url)
        try:
            page = await browser.new_page()
            await page.goto(allowed_url)
            await page.get_by_role("button", name="Chat with us").click()
            # Welcomed (no queue serves chat there: nobody to answer, which the widget says).
            await expect(page.get_by_role("status")).to_contain_text("No agent is available right now")
            await _snapshot(page, "embedded")

            # The same tag on a site not allowed: the socket's handshake is refused (403), the widget keeps trying.
            foreign = await browser.new_page()
            await foreign.goto(other_url)
            await foreign.get_by_role("button", name="Chat with us").click()
            await expect(foreign.get_by_role("status")).to_have_text("Connection lost; reconnecting…")
            # The visitors leave before the service stops: a widget's open socket would hold its stop for
            # aiohttp's whole shutdown timeout (the sockets are closed only in the cleanup after it).
            await _leave(browser)
        finally:
            await allowed.cleanup()
            await other.cleanup()


async def test_with_no_agent_there_the_widget_offers_to_leave_a_message_which_an_agent_then_gets(
    service: RunningService, browser: Browser
) -> None:
    await service.create_queue("web", ["chat"])
    page = await browser.new_page()
    await page.goto(f"{service.base_url}/chat")
    await expect(page.get_by_role("status")).to_contain_text("No agent is available right now")
    await page.get_by_label("Email").fill("late@example.com")
    message = page.get_by_label("Your message")
    await message.fill("Please write back about my invoice")
    await _snapshot(page, "leave-a-message")
    await message.press("Enter")
    await expect(page.get_by_role("status")).to_have_text("Thank you: we will get back to you at late@example.com.")
    await expect(page.get_by_role("log").locator("li.ccw-visitor:not(.ccw-pending)")).to_have_count(1)

    desktop = await service.available_agent(queues=("web",))
    offer = await desktop.receive("offer")
    assert offer["reservation"]["interaction"]["body"] == "Please write back about my invoice"
    await desktop.command({"type": "accept", "reservation_id": offer["reservation"]["id"]}, "accepted")
    assert (await desktop.receive("claims"))["email"] == "late@example.com"
    await desktop.close()


async def test_a_widget_whose_token_is_refused_again_and_again_starts_as_a_new_visitor(
    service: RunningService, browser: Browser
) -> None:
    page = await browser.new_page()
    # What a widget kept from before the service's key changed.
    stale = '{"token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.forged", "pending": []}'
    await page.add_init_script(f"localStorage.setItem('ccw:{service.base_url}', '{stale}')")
    await page.goto(f"{service.base_url}/chat")
    await expect(page.get_by_role("status")).to_contain_text("No agent is available right now", timeout=30_000)
    kept = await page.evaluate(f"JSON.parse(localStorage.getItem('ccw:{service.base_url}')).token")
    assert kept and kept != "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.forged"


async def test_outside_the_chats_hours_the_widget_says_it_is_closed_and_offers_to_leave_a_message(
    service_settings: Settings, browser: Browser
) -> None:
    tomorrow = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[(datetime.now(UTC).weekday() + 1) % 7]
    settings = service_settings.model_copy(update={"chat_hours": f"{tomorrow} 09:00-17:00"})
    async with run_service(settings) as service:
        page = await browser.new_page()
        await page.goto(f"{service.base_url}/chat")
        await expect(page.get_by_role("status")).to_contain_text("We are closed now")
        await expect(page.get_by_label("Email")).to_be_visible()
        await _snapshot(page, "closed")
        await _leave(browser)
