"""Errors that aiohttp itself raises reach the client in our error body, keeping what the protocol requires."""

from __future__ import annotations

from tests.running import RunningService


async def test_a_method_a_path_does_not_take_is_refused_naming_the_methods_it_does(service: RunningService) -> None:
    """RFC 9110: a 405 carries `Allow`, so a client can tell what would have worked."""
    url = f"{service.base_url}/api/v1/queues"
    async with service.http.put(url, json={"name": "sales"}, headers=service.admin_headers()) as response:
        assert response.status == 405
        assert (await response.json())["error"]["code"] == "method_not_allowed"
        assert response.headers.get("Allow") == "POST"
