"""The one table of answers: each of our errors, pydantic's and the infrastructure's, as HTTP, the agent socket
and SMTP say it — and what of it is logged."""

from __future__ import annotations

import asyncpg
import pytest
from pydantic import BaseModel, ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from contactcenter import errors
from contactcenter.answers import ANSWERED, REPLY_CODES, SERVICE_ERRORS, answer_to
from contactcenter.errors import (
    Conflict,
    ContactCenterError,
    Forbidden,
    Invalid,
    NotFound,
    Overloaded,
    TimedOut,
    TooLarge,
    Unauthorized,
    Unavailable,
)

SECRET = "postgresql://cc:hunter2@db/cc +14155550134"


@pytest.mark.parametrize(
    ("error", "status", "code", "smtp"),
    [
        (Invalid, 400, "invalid", 501),
        (Unauthorized, 401, "unauthorized", 530),
        (Forbidden, 403, "forbidden", 550),
        (NotFound, 404, "not_found", 550),
        (TimedOut, 408, "timeout", 421),
        (Conflict, 409, "conflict", 554),
        (TooLarge, 413, "too_large", 552),
        (Unavailable, 503, "unavailable", 451),
        (Overloaded, 503, "unavailable", 451),
        (ContactCenterError, 400, "error", 554),
    ],
)
def test_each_of_our_errors_is_answered_with_its_message_and_field(
    error: type[ContactCenterError], status: int, code: str, smtp: int
) -> None:
    answer = answer_to(error("what went wrong", field="queues"))
    assert (answer.status, answer.code, answer.smtp) == (status, code, smtp)
    assert (answer.message, answer.field) == ("what went wrong", "queues")


def test_every_error_of_ours_has_its_own_line_in_the_table() -> None:
    """A new kind of error is given its answers on purpose, not the catch-all's by accident."""
    defined = {
        kind
        for kind in vars(errors).values()
        if isinstance(kind, type) and issubclass(kind, ContactCenterError) and kind is not ContactCenterError
    }
    assert defined == set(REPLY_CODES)


def test_only_a_service_that_failed_us_is_logged_and_an_overload_is_summed_up_by_whoever_refuses() -> None:
    assert answer_to(Unavailable("the bus did not confirm")).log_line == "the bus did not confirm"
    assert not answer_to(Overloaded("too many webhooks")).logged
    for error in (Invalid, Unauthorized, Forbidden, NotFound, TimedOut, Conflict, TooLarge):
        assert not answer_to(error("no")).logged


@pytest.mark.parametrize(
    "failure",
    [
        asyncpg.PostgresConnectionError(SECRET),
        asyncpg.InterfaceError(SECRET),
        asyncpg.exceptions.AdminShutdownError(SECRET),
        RedisConnectionError(SECRET),
        RedisTimeoutError(SECRET),
        ConnectionResetError(SECRET),
        TimeoutError(SECRET),
    ],
    ids=type,
)
def test_a_service_that_went_away_is_unavailable_to_retry_and_logged_by_name_only(failure: Exception) -> None:
    answer = answer_to(failure)
    assert (answer.status, answer.code, answer.smtp, answer.field) == (503, "unavailable", 451, None)
    assert answer.message == "a service we depend on is unavailable; try again"
    assert answer.log_line == f"a service we depend on failed: {type(failure).__name__}"
    assert "hunter2" not in answer.message and "0134" not in str(answer.log_line)


def test_the_infrastructure_s_exceptions_are_answered() -> None:
    assert set(SERVICE_ERRORS) <= set(ANSWERED)


class Queue(BaseModel):
    name: str
    size: int


def test_a_validation_error_is_invalid_naming_the_field_without_repeating_the_input() -> None:
    with pytest.raises(ValidationError) as caught:
        Queue.model_validate({"name": "sales", "size": "555-0134"})
    answer = answer_to(caught.value)
    assert (answer.status, answer.code, answer.field, answer.smtp) == (400, "invalid", "size", 501)
    assert "0134" not in answer.message and not answer.logged


def test_what_is_not_ours_to_answer_is_refused() -> None:
    with pytest.raises(TypeError):
        answer_to(RuntimeError("a defect"))
