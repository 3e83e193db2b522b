"""HMAC vectors for Shopify webhook signatures (base64 HMAC-SHA256 of the raw body)."""

import base64

import pytest

from mirakl_pipelines.webhooks.hmac import sign, verify

# RFC 4231 test case 2 (key "Jefe"): an independent known answer, not computed by the code under test.
RFC_KEY = "Jefe"
RFC_DATA = b"what do ya want for nothing?"
RFC_B64 = base64.b64encode(bytes.fromhex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")).decode()
BODY = b'{"id":123456,"order_id":820982911946154508,"tracking_number":"1z827wk74630"}'


def test_known_answer_vector():
    assert sign(RFC_DATA, RFC_KEY) == RFC_B64
    assert verify(RFC_DATA, RFC_B64, [RFC_KEY]) is True


def test_valid_signature_with_surrounding_whitespace():
    assert verify(BODY, " " + sign(BODY, "s3cret") + "\t", ["s3cret"]) is True


@pytest.mark.parametrize("header", [None, "", "   ", "not-base64!", RFC_B64, "é" * 44])
def test_missing_or_invalid_signature(header):
    assert verify(BODY, header, ["s3cret"]) is False


def test_a_signature_one_character_off_is_refused():
    good = sign(BODY, "s3cret")
    bad = ("A" if good[0] != "A" else "B") + good[1:]
    assert verify(BODY, bad, ["s3cret"]) is False


def test_rotated_secret_old_and_new_are_both_accepted_others_not():
    secrets = ["new-secret", "old-secret"]
    assert verify(BODY, sign(BODY, "old-secret"), secrets) is True
    assert verify(BODY, sign(BODY, "new-secret"), secrets) is True
    assert verify(BODY, sign(BODY, "older-secret"), secrets) is False
    assert verify(BODY, sign(BODY, "old-secret"), ["new-secret"]) is False  # rotation over: old one refused


def test_tampered_body_is_refused():
    signature = sign(BODY, "s3cret")
    assert verify(BODY.replace(b"1z827wk74630", b"1z827wk74631"), signature, ["s3cret"]) is False
    assert verify(BODY + b" ", signature, ["s3cret"]) is False


def test_empty_body_is_refused_even_when_signed():
    assert verify(b"", sign(b"", "s3cret"), ["s3cret"]) is False


def test_no_secret_or_an_empty_secret_verifies_nothing():
    assert verify(BODY, sign(BODY, ""), [""]) is False
    assert verify(BODY, sign(BODY, "s3cret"), []) is False
