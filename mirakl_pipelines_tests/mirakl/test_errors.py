from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest

from mirakl_pipelines.mirakl.errors import (
    CallBudgetExceeded,
    MiraklAuthError,
    MiraklBadRequest,
    MiraklError,
    MiraklInvalidState,
    MiraklNotFound,
    MiraklRateLimited,
    MiraklServerError,
    parse_error,
    parse_retry_after,
)


def _response(status: int, content: bytes | str = b"", headers: dict | None = None) -> httpx.Response:
    return httpx.Response(status, content=content, headers=headers or {})


def test_classic_status_message_body():
    error = parse_error("OR28", _response(400, '{"status": 400, "message": "Error with field refunds."}'))
    assert type(error) is MiraklBadRequest
    assert (error.operation, error.status, error.message, error.code) == ("OR28", 400, "Error with field refunds.", None)
    assert error.body == '{"status": 400, "message": "Error with field refunds."}'
    assert "OR28" in str(error) and "400" in str(error)


def test_field_errors_body_keeps_every_error_and_the_first_code():
    body = (
        '{"errors":[{"code":"INVALID_FIELD_TYPE","field":"requests[0].files","message":"Field type is invalid"},'
        '{"code":"OTHER","field":"x","message":"bad"}]}'
    )
    error = parse_error("DR74", _response(400, body))
    assert type(error) is MiraklBadRequest
    assert error.code == "INVALID_FIELD_TYPE"
    assert len(error.errors) == 2
    assert "requests[0].files" in error.message and "Field type is invalid" in error.message and "bad" in error.message


def test_plain_text_and_empty_bodies():
    text = parse_error("OR24", _response(411, "Length Required"))
    assert type(text) is MiraklBadRequest and text.message == "Length Required"
    empty = parse_error("OR11", _response(502, b""))
    assert type(empty) is MiraklServerError and empty.message == "Bad Gateway" and empty.body == ""
    not_an_object = parse_error("OR11", _response(500, "[1, 2]"))
    assert type(not_an_object) is MiraklServerError and not_an_object.message == "[1, 2]"


@pytest.mark.parametrize(
    ("status", "cls"),
    [(401, MiraklAuthError), (403, MiraklAuthError), (404, MiraklNotFound), (405, MiraklBadRequest),
     (429, MiraklRateLimited), (500, MiraklServerError), (503, MiraklServerError)],
)
def test_status_picks_the_class(status, cls):
    error = parse_error("OR11", _response(status, '{"status": %d, "message": "m"}' % status))
    assert type(error) is cls
    assert isinstance(error, MiraklError)


def test_invalid_state_from_current_status_text():
    error = parse_error(
        "OR24", _response(400, '{"status": 400, "message": "Order X-1-A cannot be shipped. Current status is SHIPPED"}')
    )
    assert isinstance(error, MiraklInvalidState) and isinstance(error, MiraklBadRequest)
    assert error.current_status == "SHIPPED"


def test_invalid_state_from_code_in_either_shape():
    classic = parse_error("OR21", _response(400, '{"status": 400, "code": "ORDER_INVALID_STATE", "message": "no"}'))
    listed = parse_error("OR21", _response(400, '{"errors": [{"code": "ORDER_INVALID_STATE", "message": "no"}]}'))
    assert isinstance(classic, MiraklInvalidState) and classic.code == "ORDER_INVALID_STATE"
    assert isinstance(listed, MiraklInvalidState)
    assert classic.current_status is None
    other = parse_error("OR21", _response(400, '{"errors": [{"code": "ORDER_LINE_NOT_FOUND", "message": "no"}]}'))
    assert type(other) is MiraklBadRequest


def test_retry_after_seconds_and_http_date():
    error = parse_error("OR11", _response(429, '{"status": 429, "message": "Too Many Requests"}', {"Retry-After": "7"}))
    assert isinstance(error, MiraklRateLimited) and error.retry_after == 7.0
    assert parse_error("OR11", _response(429, "")).retry_after is None
    now = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now=now) == 30.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-3") == 0.0


def test_long_messages_are_cut_in_str_but_kept_whole():
    error = parse_error("OR11", _response(400, "x" * 2000))
    assert len(error.message) == 2000
    assert len(str(error)) < 600


def test_call_budget_exceeded_says_what_and_how_long():
    error = CallBudgetExceeded("OR11", 42.0, 10.0, "decathlon_fr:OR11")
    assert error.operation == "OR11" and error.status is None and error.wait == 42.0
    assert "decathlon_fr:OR11" in str(error) and "42.0" in str(error)
