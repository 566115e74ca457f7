"""Signed visitor ids, the report page's session tokens and the default identification plugin."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segmint.engine.config.schema import Config, IdentityConfig, MiddlewareConfig
from segmint.engine.identity import Identity
from segmint.engine.signing import MAX_TOKEN_LENGTH, new_visitor_id, session_token, sign, verify, verify_session
from segmint.plugins.identify_default import segmint_identify_visitor

SECRET = "unit-test-secret-0123456789"


def test_sign_verify_round_trip_and_ids_are_random():
    ids = {new_visitor_id() for _ in range(200)}
    assert len(ids) == 200
    for visitor_id in list(ids)[:20]:
        token = sign(visitor_id, SECRET)
        assert verify(token, SECRET) == visitor_id
        assert verify(token, SECRET + "x") is None


def test_forged_and_garbled_tokens_are_rejected():
    visitor_id = new_visitor_id()
    token = sign(visitor_id, SECRET)
    other = new_visitor_id()
    assert verify(f"{other}.{token.split('.')[1]}", SECRET) is None  # someone else's id, my signature
    assert verify(token[:-1] + ("A" if token[-1] != "A" else "B"), SECRET) is None
    assert verify(visitor_id, SECRET) is None
    assert verify("", SECRET) is None
    assert verify(token + "x" * MAX_TOKEN_LENGTH, SECRET) is None
    assert verify(token, "") is None


def test_sign_refuses_empty_secret_and_foreign_ids():
    with pytest.raises(ValueError, match="secret"):
        sign(new_visitor_id(), "")
    with pytest.raises(ValueError, match="visitor id"):
        sign("../../etc", SECRET)


@settings(max_examples=200)
@given(st.text(max_size=200))
def test_verify_never_raises_and_never_accepts_random_text(text: str):
    assert verify(text, SECRET) is None


def _config(**middleware: Any) -> Config:
    return Config(identity=IdentityConfig(secret=SECRET), middleware=MiddlewareConfig(**middleware))


def _scope(cookie: str | None = None, agent: str = "Mozilla/5.0", user: Any = None) -> dict[str, Any]:
    headers = [(b"user-agent", agent.encode())]
    if cookie is not None:
        headers.append((b"cookie", cookie.encode()))
    scope: dict[str, Any] = {"type": "http", "headers": headers}
    if user is not None:
        scope["user"] = user
    return scope


class User:
    def __init__(self, identity: str, authenticated: bool = True) -> None:
        self.identity = identity
        self.is_authenticated = authenticated


def test_a_session_token_holds_its_expiry_under_the_secret_and_nothing_else_verifies():
    token = session_token(2_000_000_000, SECRET)
    assert verify_session(token, SECRET, now=1_999_999_999.5)
    assert not verify_session(token, SECRET, now=2_000_000_000)  # expired at its second
    assert not verify_session(token, SECRET + "x", now=0)  # another token (a rotated one)
    later = token.replace("2000000000", "2000000001", 1)
    assert not verify_session(later, SECRET, now=0)  # the expiry cannot be extended
    visitor = sign(new_visitor_id(), SECRET)
    assert not verify_session(visitor, SECRET, now=0)  # a visitor cookie is no session
    for bad in (None, "", "1.2", token + "x", "x" * 200):
        assert not verify_session(bad, SECRET, now=0)
    assert not verify_session(token, None, now=0) and not verify_session(token, "", now=0)
    with pytest.raises(ValueError):
        session_token(2_000_000_000, "")


def test_new_visitor_gets_a_fresh_signed_id():
    identity = segmint_identify_visitor(_scope(), _config())
    assert isinstance(identity, Identity)
    assert identity.is_new and identity.personalize and identity.track
    assert verify(identity.cookie_value, SECRET) == identity.visitor_id


def test_valid_cookie_keeps_the_visitor():
    token = sign(visitor := new_visitor_id(), SECRET)
    identity = segmint_identify_visitor(_scope(f"a=1; segmint_vid={token}; b=2"), _config())
    assert identity.visitor_id == visitor and not identity.is_new and identity.cookie_value is None


@pytest.mark.parametrize("value", ["garbage", "x" * 5000, "AAAAAAAAAAAAAAAAAAAAAA.forged", '"quoted"'])
def test_bad_cookie_gets_a_fresh_id(value: str):
    identity = segmint_identify_visitor(_scope(f"segmint_vid={value}"), _config())
    assert identity.is_new and identity.visitor_id and identity.visitor_id not in value
    assert identity.reason == "forged or garbled cookie"


def test_authenticated_user_is_the_customer_and_keeps_the_cookie_visitor():
    token = sign(visitor := new_visitor_id(), SECRET)
    identity = segmint_identify_visitor(_scope(f"segmint_vid={token}", user=User("42")), _config())
    assert identity.customer_id == "42" and identity.visitor_id == visitor
    anonymous = segmint_identify_visitor(_scope(user=User("42", authenticated=False)), _config())
    assert anonymous.customer_id is None


def test_bots_get_no_id_no_cookie_no_tracking():
    identity = segmint_identify_visitor(_scope(agent="Mozilla/5.0 (compatible; Googlebot/2.1)"), _config())
    assert identity == Identity(personalize=False, track=False, reason="bot")


def test_consent_required():
    config = _config(require_consent=True)
    assert segmint_identify_visitor(_scope(), config).reason == "no consent"
    assert segmint_identify_visitor(_scope("segmint_consent=0"), config).track is False
    granted = segmint_identify_visitor(_scope("segmint_consent=1"), config)
    assert granted.track and granted.personalize and granted.is_new


def test_no_secret_means_anonymous():
    identity = segmint_identify_visitor(_scope(), Config())
    assert not identity.personalize and not identity.track and identity.cookie_value is None
