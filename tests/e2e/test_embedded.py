"""The README's first command on a machine with no service URLs: embedded PostgreSQL (pgserver), in-process
Redis and bus — the whole spine in one process, driven from outside like a newcomer would."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from bench.ports import free_port
from contactcenter.settings import Settings
from tests.e2e.test_supervisors import until
from tests.running import ADMIN_TOKEN, TWILIO_AUTH_TOKEN, RunningService, wait_ready


@pytest.fixture
async def embedded_service(tmp_path: Path) -> AsyncIterator[RunningService]:
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("CC_")}
    env |= {
        "CC_HTTP_PORT": str(port),
        "CC_DATA_DIR": str(tmp_path / "var"),
        "CC_DEMO_ON_FIRST_START": "false",
        "CC_ADMIN_TOKEN": ADMIN_TOKEN,
        "CC_TWILIO_AUTH_TOKEN": TWILIO_AUTH_TOKEN,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "contactcenter", "serve", cwd=tmp_path, env=env
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            await wait_ready(http, base_url, process)
            settings = Settings(_env_file=None, twilio_account_sid="AC" + "0" * 32)
            yield RunningService(base_url, settings, http, app=None)  # type: ignore[arg-type]  # the service is another process: no app here
    finally:
        process.terminate()
        # SIGTERM is a graceful shutdown: the embedded PostgreSQL is stopped and the exit is clean.
        assert await asyncio.wait_for(process.wait(), 30) == 0


async def test_embedded_mode_runs_the_whole_spine_in_one_process(embedded_service: RunningService) -> None:
    service = embedded_service
    await service.create_queue("sales", ["sms"])
    desktop = await service.available_agent()

    assert (await service.post_sms(sender="+14155550134", body="hello from embedded")).status == 200
    offer = await desktop.receive("offer")
    assert offer["card"]["identities"][0]["value"] == "+14155550134"
    await desktop.command({"type": "accept", "reservation_id": offer["reservation"]["id"]}, "accepted")
    await service.post_sms(sender="+14155550134", body="again")
    assert (await desktop.receive("message"))["conversation_id"] == offer["reservation"]["conversation_id"]
    await desktop.close()


async def test_the_ready_line_comes_when_the_service_answers_and_a_missing_twilio_token_is_warned_of(
    tmp_path: Path,
) -> None:
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("CC_")}
    env |= {"CC_HTTP_PORT": str(port), "CC_DATA_DIR": str(tmp_path / "var"), "CC_ADMIN_TOKEN": ADMIN_TOKEN}
    errors = await _serve_until_ready(tmp_path, port, env)
    assert "CC_TWILIO_AUTH_TOKEN is not set" in errors


async def test_a_start_without_a_login_session_prints_no_library_warning(tmp_path: Path) -> None:
    """A container or a CI runner has no XDG_RUNTIME_DIR: the operator still sees only our own messages."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("CC_") and key != "XDG_RUNTIME_DIR"}
    env |= {
        "CC_HTTP_PORT": str(port),
        "CC_DATA_DIR": str(tmp_path / "var"),
        "CC_ADMIN_TOKEN": ADMIN_TOKEN,
        "CC_TWILIO_AUTH_TOKEN": TWILIO_AUTH_TOKEN,
    }
    errors = await _serve_until_ready(tmp_path, port, env)
    assert "Warning" not in errors, errors


async def test_the_first_start_on_an_empty_database_loads_the_demo_and_prints_its_pages(tmp_path: Path) -> None:
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("CC_")}
    env |= {"CC_HTTP_PORT": str(port), "CC_DATA_DIR": str(tmp_path / "var"), "CC_ADMIN_TOKEN": ADMIN_TOKEN}
    printed: list[str] = []

    async def supervisor_sees_the_demo(base_url: str) -> None:
        people = json.loads((tmp_path / "var" / "demo.json").read_text("utf-8"))
        headers = {"Authorization": f"Bearer {people['supervisor']}"}

        async def three_queues() -> bool:
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"{base_url}/api/v1/queues/stats", headers=headers) as got,
            ):
                assert got.status == 200, await got.text()
                return sorted(q["name"] for q in (await got.json())["queues"]) == ["questions", "sales", "service"]

        await until(three_queues, "the demo's supervisor sees its three queues")  # the watch reads the directory

    await _serve_until_ready(tmp_path, port, env, printed, supervisor_sees_the_demo)
    said = "".join(printed)
    assert "demo center loaded" in said
    assert f"http://127.0.0.1:{port}/supervisor" in said and f"http://127.0.0.1:{port}/agent" in said

    printed.clear()  # a second start finds the demo there: it is described again, not loaded twice
    await _serve_until_ready(tmp_path, port, env, printed, supervisor_sees_the_demo)
    assert "demo center loaded" in "".join(printed)


async def test_the_demo_is_not_loaded_when_turned_off(tmp_path: Path) -> None:
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("CC_")}
    env |= {
        "CC_HTTP_PORT": str(port),
        "CC_DATA_DIR": str(tmp_path / "var"),
        "CC_ADMIN_TOKEN": ADMIN_TOKEN,
        "CC_DEMO_ON_FIRST_START": "false",
    }
    printed: list[str] = []

    async def no_queue(base_url: str) -> None:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with aiohttp.ClientSession() as http, http.get(f"{base_url}/api/v1/queues/stats", headers=headers) as got:
            assert got.status == 200, await got.text()
            assert (await got.json())["queues"] == []

    await _serve_until_ready(tmp_path, port, env, printed, no_queue)
    assert "demo center" not in "".join(printed)
    assert not (tmp_path / "var" / "demo.json").exists()


async def _serve_until_ready(
    tmp_path: Path,
    port: int,
    env: dict[str, str],
    printed: list[str] | None = None,
    then: Callable[[str], Awaitable[None]] | None = None,
) -> str:
    """Run `contactcenter serve` until its ready line (and `/readyz` answers 200), do `then`, stop it; what it
    wrote on stderr (and on stdout until ready, in `printed`)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "contactcenter", "serve"),
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    try:
        async with asyncio.timeout(60):
            line = b""
            while b"contactcenter ready" not in line:
                line = await process.stdout.readline()
                if printed is not None:
                    printed.append(line.decode())
                if not line:
                    pytest.fail("no ready line; the service said: " + (await process.stderr.read()).decode())
        assert line.decode().startswith(f"contactcenter ready on http://127.0.0.1:{port} (embedded, role all)")
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/readyz") as response:
            assert response.status == 200, "ready means /readyz answers 200, at once"
        if then is not None:
            await then(f"http://127.0.0.1:{port}")
    finally:
        process.terminate()
        _, errors = await asyncio.wait_for(process.communicate(), 30)
    return errors.decode()
