"""The OpenAPI document built from the operations the API classes declare: valid OpenAPI 3.1, with what each
operation needs and answers, described by the models of `schema/`."""

from __future__ import annotations

from typing import Any

from openapi_spec_validator import validate

from contactcenter.api.openapi import openapi_document
from contactcenter.host.app import http_operations
from schema import ClientCard


def document() -> dict[str, Any]:
    return openapi_document(http_operations())


def test_the_document_is_valid_openapi_3_1() -> None:
    built = document()
    assert built["openapi"] == "3.1.0"
    validate(built)


def test_the_card_endpoints_answer_the_client_card_model() -> None:
    built = document()
    for path in ("/api/v1/clients/lookup", "/api/v1/clients/{client_id}"):
        schema = built["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ClientCard"}
    card = built["components"]["schemas"]["ClientCard"]
    assert set(card["required"]) == set(ClientCard.model_fields)
    assert {"client", "identities", "timeline", "profile", "possible_matches"} <= set(card["required"])


def test_each_operation_names_the_role_it_requires() -> None:
    paths = document()["paths"]
    assert paths["/api/v1/queues"]["post"]["security"] == [{"bearer": ["admin"]}]
    assert paths["/api/v1/agents/ws"]["get"]["security"] == [{"bearer": ["agent"]}]
    assert paths["/api/v1/clients/{client_id}"]["get"]["security"] == [{"bearer": ["admin"]}, {"bearer": ["agent"]}]
    assert paths["/channels/twilio/sms"]["post"]["security"] == []  # Twilio signs instead


def test_errors_are_described_by_the_error_body() -> None:
    built = document()
    for path, item in built["paths"].items():
        for method, operation in item.items():
            for status, answer in operation["responses"].items():
                if int(status) >= 400 and path != "/readyz":
                    schema = answer["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, status)


def test_the_twilio_webhook_takes_a_signed_form() -> None:
    operation = document()["paths"]["/channels/twilio/sms"]["post"]
    form = operation["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    assert form == {"$ref": "#/components/schemas/InboundSmsForm"}
    assert {"name": "X-Twilio-Signature", "in": "header"}.items() <= operation["parameters"][0].items()
    assert operation["parameters"][0]["required"] is True
