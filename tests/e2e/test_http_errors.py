"""Errors that aiohttp itself raises reach the client in our error body, keeping what the protocol requires;
and whatever the one table of answers answers (`contactcenter.answers`) is answered by the middleware."""

from __future__ import annotations

import aiohttp
from aiohttp import web
from pydantic import BaseModel

from contactcenter.http_errors import error_middleware
from tests.running import RunningService


async def test_a_method_a_path_does_not_take_is_refused_naming_the_methods_it_does(service: RunningService) -> None:
    """RFC 9110: a 405 carries `Allow`, so a client can tell what would have worked."""
    url = f"{service.base_url}/api/v1/queues"
    async with service.http.put(url, json={"name": "sales"}, headers=service.admin_headers()) as response:
        assert response.status == 405
        assert (await response.json())["error"]["code"] == "method_not_allowed"
        assert response.headers.get("Allow") == "POST"


class Callback(BaseModel):
    port: int


async def test_a_validation_a_handler_did_not_translate_is_400_naming_the_field_not_a_500() -> None:
    async def handler(request: web.Request) -> web.Response:
        Callback.model_validate({"port": request.query["port"]})
        return web.Response()

    app = web.Application(middlewares=[error_middleware])
    app.router.add_get("/callback", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/callback?port=eighty"
        async with aiohttp.ClientSession() as http, http.get(url) as response:
            assert response.status == 400
            error = (await response.json())["error"]
    finally:
        await runner.cleanup()
    assert (error["code"], error["field"]) == ("invalid", "port")
    assert "eighty" not in error["message"]
