"""`GET /api/v1/openapi.json`: the OpenAPI 3.1 document of the HTTP API, built from the operations the API
classes declare (`api.operations`) and the pydantic models they name — never written by hand."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from importlib.metadata import version
from typing import Any, cast

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from contactcenter.api.operations import Access, Answer, Operation, Parameter

Usage = tuple[type[BaseModel], JsonSchemaMode]

# An agent's token or the admin's (staff) are alternatives: OpenAPI 3.1 lists the roles a scheme requires.
_SECURITY: dict[Access, list[dict[str, list[str]]]] = {
    Access.ADMIN: [{"bearer": ["admin"]}],
    Access.AGENT: [{"bearer": ["agent"]}],
    Access.STAFF: [{"bearer": ["admin"]}, {"bearer": ["agent"]}],
    Access.INTEGRATION: [{"bearer": ["admin"]}, {"bearer": ["integration"]}],
    Access.SUPERVISOR: [{"bearer": ["admin"]}, {"bearer": ["supervisor"]}],
    Access.VIEWER: [
        {"bearer": ["admin"]},
        {"bearer": ["supervisor"]},
        {"bearer": ["agent"]},
        {"bearer": ["integration"]},
    ],
}


def openapi_document(operations: Iterable[Operation]) -> dict[str, Any]:
    operations = list(operations)
    keyed, definitions = models_json_schema(
        _model_usages(operations), ref_template="#/components/schemas/{model}", title="contactcenter"
    )
    # Keyed by the usages given, which are all models: pydantic's key type also admits dataclasses.
    refs = cast("dict[Usage, dict[str, Any]]", keyed)
    paths: dict[str, dict[str, Any]] = {}
    for operation in operations:
        paths.setdefault(operation.path, {})[operation.method.lower()] = _operation(operation, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "contactcenter",
            "version": version("contactcenter"),
            "description": "Omnichannel contact-center backend: Twilio webhooks, the admin API, client cards "
            "and the agent desktop's socket. Errors are `ErrorBody`.",
        },
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "`Authorization: Bearer <token>`: CC_ADMIN_TOKEN (role admin), the token "
                    "an agent got at its creation (role agent) or the one an integration got at its creation "
                    "(role integration).",
                }
            },
        },
    }


def _model_usages(operations: Sequence[Operation]) -> list[Usage]:
    """Each model once per mode: requests are read (validation), responses written (serialization)."""
    usages: dict[Usage, None] = {}
    for operation in operations:
        if operation.body is not None:
            usages[(operation.body, "validation")] = None
        for answer in operation.responses.values():
            if answer.model is not None:
                usages[(answer.model, "serialization")] = None
    return list(usages)


def _operation(operation: Operation, refs: dict[Usage, dict[str, Any]]) -> dict[str, Any]:
    described: dict[str, Any] = {
        "operationId": operation.operation_id,
        "summary": operation.summary,
        "responses": {str(status): _answer(answer, refs) for status, answer in sorted(operation.responses.items())},
    }
    if operation.parameters:
        described["parameters"] = [_parameter(parameter) for parameter in operation.parameters]
    if operation.body is not None:
        schema = refs[(operation.body, "validation")]
        described["requestBody"] = {"required": True, "content": {operation.body_media_type: {"schema": schema}}}
    described["security"] = _SECURITY[operation.access] if operation.access is not None else []
    return described


def _answer(answer: Answer, refs: dict[Usage, dict[str, Any]]) -> dict[str, Any]:
    described: dict[str, Any] = {"description": answer.description}
    if answer.model is not None:
        described["content"] = {answer.media_type: {"schema": refs[(answer.model, "serialization")]}}
    elif answer.schema is not None:
        described["content"] = {answer.media_type: {"schema": dict(answer.schema)}}
    if answer.headers:
        described["headers"] = {
            name: {"description": text, "required": True, "schema": {"type": "string"}}
            for name, text in answer.headers.items()
        }
    return described


def _parameter(parameter: Parameter) -> dict[str, Any]:
    return {
        "name": parameter.name,
        "in": parameter.location,
        "description": parameter.description,
        "required": parameter.required or parameter.location == "path",
        "schema": dict(parameter.schema),
    }


SERVE: Operation = Operation(
    "GET",
    "/api/v1/openapi.json",
    "openapi",
    "This document",
    {200: Answer("the OpenAPI 3.1 document of the HTTP API", schema={"type": "object"})},
)


class OpenApiDocument:
    """Serves the document, rendered once when the app is assembled."""

    OPERATIONS = (SERVE,)

    def __init__(self, operations: Iterable[Operation]) -> None:
        self._text = json.dumps(openapi_document(operations))

    def routes(self) -> list[web.RouteDef]:
        return [SERVE.route(self.serve)]

    async def serve(self, request: web.Request) -> web.Response:
        return web.Response(text=self._text, content_type="application/json")
