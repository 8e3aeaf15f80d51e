"""The served OpenAPI document is the one generated from the operations, and it lists exactly the routes the
assembled app registers."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from contactcenter.api.openapi import openapi_document
from contactcenter.host.app import http_operations
from tests.running import RunningService

# aiohttp answers HEAD on every GET route by itself: the document describes the GET.
UNDOCUMENTED_METHODS = {"HEAD"}
# Pages and sockets the document leaves out, by (method, path): none today. A page added later goes here.
UNDOCUMENTED_ROUTES: set[tuple[str, str]] = set()


def documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in document["paths"].items() for method in item}


def registered(app: web.Application) -> set[tuple[str, str]]:
    routes = {(route.method, route.resource.canonical) for route in app.router.routes() if route.resource}
    return {route for route in routes if route[0] not in UNDOCUMENTED_METHODS} - UNDOCUMENTED_ROUTES


async def test_the_served_document_is_generated_from_the_operations(service: RunningService) -> None:
    async with service.http.get(f"{service.base_url}/api/v1/openapi.json") as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        served = await response.json()
    assert served == openapi_document(http_operations())


async def test_every_registered_route_is_in_the_document_and_nothing_else(service: RunningService) -> None:
    async with service.http.get(f"{service.base_url}/api/v1/openapi.json") as response:
        document = await response.json()
    routes = registered(service.app)
    assert ("POST", "/channels/twilio/sms") in routes  # the route table is the assembled one, not an empty app
    assert documented(document) == routes
