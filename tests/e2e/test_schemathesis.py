"""The running service, on the real servers, answers every operation as its OpenAPI document says, under
schemathesis: no 5xx; documented statuses, content types, headers and bodies; no operation that requires a
token does without."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import hypothesis
import pytest
import requests
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from twilio.request_validator import RequestValidator

from tests.running import ADMIN_TOKEN, TWILIO_AUTH_TOKEN, RunningService

Operation = schemathesis.APIOperation[Any, Any, Any, Any]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    ignored_auth,
    response_headers_conformance,
    response_schema_conformance,
]
# Cases per operation and pass: enough to reach each documented answer, few enough that the whole run stays
# well under a minute on a slow shared machine (150 a pass found nothing more than 25 did, in four times as long).
EXAMPLES = 40
# Without a token, every case should meet the same 401.
EXAMPLES_WITHOUT_TOKEN = 10


async def test_a_real_card_conforms_to_the_document(service: RunningService) -> None:
    """Generated ids find no client: this one case proves the card the database renders is the one described."""
    await service.create_queue("sales", ["sms"])
    assert (await service.post_sms(sender="+14155550142", body="is my order on its way?")).status == 200
    lookup = f"{service.base_url}/api/v1/clients/lookup"
    card = await _poll_card(service, lookup, {"phone": "+14155550142"})
    schema = await asyncio.to_thread(schemathesis.openapi.from_url, f"{service.base_url}/api/v1/openapi.json")
    headers = service.admin_headers()
    for operation, parameters in (
        (schema["/api/v1/clients/lookup"]["GET"], {"query": {"phone": "+14155550142"}}),
        (schema["/api/v1/clients/{client_id}"]["GET"], {"path_parameters": {"client_id": card["client"]["id"]}}),
    ):
        case = operation.Case(**parameters)
        answer = await asyncio.to_thread(case.call_and_validate, base_url=service.base_url, headers=headers)
        assert answer.status_code == 200
        assert answer.json()["timeline"][0]["body"] == "is my order on its way?"


async def _poll_card(service: RunningService, url: str, query: dict[str, str]) -> dict[str, Any]:
    """The card once the router has stored the contact."""
    async with asyncio.timeout(20):
        while True:
            async with service.http.get(url, params=query, headers=service.admin_headers()) as response:
                if response.status == 200:
                    card: dict[str, Any] = await response.json()
                    return card
            await asyncio.sleep(0.05)


# Every operation fuzzed in turn: minutes of CPU when the suite's other workers share the cores (118 s seen on a
# shared host, past the suite's 120 s hang guard). The checks are the same; only the guard is longer.
@pytest.mark.timeout(360)
async def test_every_operation_answers_as_documented_under_schemathesis(service: RunningService) -> None:
    await service.create_queue("sales", ["sms"])
    agent = await service.create_agent("Ann", ["sales"])
    integration = await service.create_integration("ERP")
    supervisor = await service.create_supervisor("Sue", ["sales"])
    tokens = {
        "admin": ADMIN_TOKEN,
        "agent": agent["token"],
        "integration": integration["token"],
        "supervisor": supervisor["token"],
    }
    # The service runs in this loop; schemathesis calls it synchronously, so it runs in a thread meanwhile.
    report = await asyncio.to_thread(_fuzz, service.base_url, tokens)
    print("\n".join(f"{label}: {count} cases" for label, count in report.cases.items()))
    untried = [label for label, count in report.cases.items() if not count]
    assert not report.failures and not untried, "\n\n".join([*report.failures, f"no case ran: {untried}"])


class FuzzReport:
    def __init__(self) -> None:
        self.cases: dict[str, int] = {}
        self.failures: list[str] = []


def _fuzz(base_url: str, tokens: dict[str, str]) -> FuzzReport:
    schema = schemathesis.openapi.from_url(f"{base_url}/api/v1/openapi.json")
    schema.validate()  # as OpenAPI 3.1
    report = FuzzReport()
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            report.failures.append(f"an operation schemathesis cannot read: {result.err()}")
            continue
        operation = result.ok()
        bearer = _bearer(operation.definition.raw.get("security", []), tokens)
        for label, mode, token, examples in _passes(operation, bearer):
            report.cases[label] = 0
            try:
                _fuzz_operation(operation, mode, examples, base_url, token, report.cases, label)
            # Each operation's failures are reported, and the others still run. Schemathesis' `FailureGroup`
            # is a `BaseExceptionGroup`; anything else (a check that could not run) is reported the same way.
            except (FailureGroup, Exception) as exc:
                report.failures.append(f"{label}: {exc}")
    return report


def _passes(
    operation: Operation, bearer: Iterator[str] | None
) -> Iterator[tuple[str, schemathesis.GenerationMode, Iterator[str] | None, int]]:
    """Valid input, then invalid input (for an operation that takes any), then, for an operation that requires
    a token, valid input with none of ours."""
    positive, negative = schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE
    yield f"{operation.label} (positive)", positive, bearer, EXAMPLES
    if "parameters" in operation.definition.raw or "requestBody" in operation.definition.raw:
        yield f"{operation.label} (negative)", negative, bearer, EXAMPLES
    if bearer is not None:
        yield f"{operation.label} (no valid token)", positive, None, EXAMPLES_WITHOUT_TOKEN


def _fuzz_operation(
    operation: Operation,
    mode: schemathesis.GenerationMode,
    examples: int,
    base_url: str,
    bearer: Iterator[str] | None,
    cases: dict[str, int],
    label: str,
) -> None:
    """Counts the cases run in `cases[label]`; raise on the first that fails a check."""

    @hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        # No shrinking: each step is a request, and the failing case is reported with its curl as it came.
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case[Operation]) -> None:
        cases[label] += 1
        headers = {"Authorization": f"Bearer {next(bearer)}"} if bearer is not None else {}
        if case.operation.path.startswith("/channels/twilio/") and isinstance(case.body, dict):
            query = f"?{urlencode(case.query, doseq=True)}" if case.query else ""
            headers["X-Twilio-Signature"] = _twilio_signature(base_url + case.operation.path + query, case.body)
        if case.operation.path == "/api/v1/webhooks" and isinstance(case.body, dict) and "url" in case.body:
            # Generated URLs could name any host on the internet, which events would then be sent to (and a
            # name is resolved at registration): an address the SSRF guard refuses keeps every case on loopback.
            case.body["url"] = "http://127.0.0.1:9/fuzz"
        if case.operation.path == STREAM_PATH:
            _call_stream(case, base_url, headers)
            return
        case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS)

    run()


STREAM_PATH = "/api/v1/supervisor/stream"


def _call_stream(case: schemathesis.Case[Operation], base_url: str, headers: dict[str, str]) -> None:
    """The figures' stream never ends: an open one is checked by its head and first lines, and closed; an
    answer that is not a stream (a refusal) is checked as every answer is."""
    response = requests.request(**case.as_transport_kwargs(base_url=base_url, headers=headers), stream=True, timeout=30)
    try:
        if response.headers.get("Content-Type", "").startswith("text/event-stream"):
            assert response.status_code == 200, response.status_code
            assert next(response.iter_lines()).startswith(b"retry: ")
            return
        case.validate_response(response, checks=CHECKS)
    finally:
        response.close()


def _bearer(security: list[dict[str, list[str]]], tokens: dict[str, str]) -> Iterator[str] | None:
    """The tokens to call an operation with, by the roles its document requires; each role's in turn when it
    takes several."""
    accepted = [tokens[role] for requirement in security for role in requirement.get("bearer", [])]
    return itertools.cycle(accepted) if accepted else None


def _twilio_signature(url: str, form: dict[str, Any]) -> str:
    """Signed as Twilio signs, so generated forms get past the signature to the webhook's own checks."""
    return str(RequestValidator(TWILIO_AUTH_TOKEN).compute_signature(url, {k: str(v) for k, v in form.items()}))
