"""SASL/OAUTHBEARER's server side (jackalope.kafka.oauthbearer), sans I/O: the client's
initial response (RFC 7628's GS2 header and key/value pairs), Kafka's unsecured JWS checks, and
the error exchange (JSON challenge, the client's %x01, failure); and the start-up settings."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest

from jackalope.kafka.oauthbearer import (
    INSUFFICIENT_SCOPE,
    OAuthBearerError,
    OAuthBearerServer,
    TokenRejected,
    ValidatorConfig,
    initial_response,
    parse_initial_response,
    unsecured_token,
    validate,
)
from jackalope.settings import Settings, SettingsError

NOW_MS = 1_800_000_000_000.0
NOW = NOW_MS / 1000
CONFIG = ValidatorConfig()


def _jws(header: Any, claims: Any, signature: str = "") -> str:
    def part(value: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part(header)}.{part(claims)}.{signature}"


def _claims(**extra: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {"sub": "alice", "iat": NOW - 10, "exp": NOW + 3600}
    claims.update(extra)
    return {k: v for k, v in claims.items() if v is not None}


def test_a_valid_token() -> None:
    token = validate(_jws({"alg": "none"}, _claims(scope="read write")), CONFIG, NOW_MS)
    assert token.principal == "alice"
    assert token.expires_ms == (NOW + 3600) * 1000
    assert token.scope == {"read", "write"}


def test_the_helpers_token_is_what_kafka_makes() -> None:
    token = unsecured_token("admin", lifetime_s=60, issued_at=NOW)
    header, _claims_part, signature = token.split(".")
    assert signature == ""
    assert json.loads(base64.urlsafe_b64decode(header + "==")) == {"alg": "none"}
    assert validate(token, CONFIG, NOW_MS).principal == "admin"


@pytest.mark.parametrize(
    ("header", "claims", "signature", "reason"),
    [
        ({"alg": "HS256"}, _claims(), "", "'none' for an algorithm"),
        ({}, _claims(), "", "'none' for an algorithm"),
        ({"alg": "none"}, _claims(), "c2ln", "must not contain a digital signature"),
        ({"alg": "none"}, _claims(sub=None), "", "Required claim missing: sub"),
        ({"alg": "none"}, _claims(sub="  "), "", "No principal name"),
        ({"alg": "none"}, _claims(sub=7), "", "No principal name"),
        ({"alg": "none"}, _claims(exp=None), "", "No expiration time"),
        ({"alg": "none"}, _claims(exp=NOW - 1), "", "expired"),
        ({"alg": "none"}, _claims(exp=NOW), "", "expired"),
        ({"alg": "none"}, _claims(exp="soon"), "", "not a number"),
        ({"alg": "none"}, _claims(iat=NOW + 60), "", "Issued At"),
        ({"alg": "none"}, _claims(iat=NOW - 10, exp=NOW - 20), "", "expired"),
        ({"alg": "none"}, _claims(scope=3), "", "neither a string nor a list"),
        (["alg", "none"], _claims(), "", "not a JSON object"),
    ],
)
def test_refused_tokens(header: Any, claims: Any, signature: str, reason: str) -> None:
    with pytest.raises(TokenRejected, match=reason) as refused:
        validate(_jws(header, claims, signature), CONFIG, NOW_MS)
    assert refused.value.challenge() == b'{"status":"invalid_token"}'


def test_non_finite_times_are_refused() -> None:
    header = base64.urlsafe_b64encode(b'{"alg":"none"}').decode().rstrip("=")
    for claims in (b'{"sub":"a","exp":NaN}', b'{"sub":"a","exp":Infinity}', b'{"sub":"a","exp":1e400}'):
        body = base64.urlsafe_b64encode(claims).decode().rstrip("=")
        with pytest.raises(TokenRejected, match="finite"):
            validate(f"{header}.{body}.", CONFIG, NOW_MS)


@pytest.mark.parametrize("token", ["abc", "a.b", "a..b", "!!!.e30.", "e30.bm90IGpzb24."])
def test_malformed_tokens(token: str) -> None:
    with pytest.raises(TokenRejected):
        validate(token, CONFIG, NOW_MS)


def test_clock_skew_allows_a_just_expired_or_early_token() -> None:
    skewed = ValidatorConfig(allowable_clock_skew_ms=5000)
    late = _jws({"alg": "none"}, _claims(exp=NOW - 2))
    early = _jws({"alg": "none"}, _claims(iat=NOW + 2))
    assert validate(late, skewed, NOW_MS).principal == "alice"
    assert validate(early, skewed, NOW_MS).principal == "alice"
    with pytest.raises(TokenRejected):
        validate(_jws({"alg": "none"}, _claims(exp=NOW - 6)), skewed, NOW_MS)


def test_required_scope_and_claim_names() -> None:
    config = ValidatorConfig(principal_claim="user", scope_claim="scp", required_scope=("kafka", "write"))
    ok = _jws({"alg": "none"}, _claims(sub=None, user="bob", scp=["kafka", "write", "x"]))
    assert validate(ok, config, NOW_MS).principal == "bob"
    short = _jws({"alg": "none"}, _claims(sub=None, user="bob", scp="kafka"))
    with pytest.raises(TokenRejected, match="missing a required scope") as refused:
        validate(short, config, NOW_MS)
    assert refused.value.status == INSUFFICIENT_SCOPE
    assert json.loads(refused.value.challenge()) == {"status": INSUFFICIENT_SCOPE, "scope": "kafka write"}


def test_initial_response_with_authzid_and_extensions() -> None:
    data = b"n,a=ali=2Cce=3D,\x01auth=Bearer abc.def.\x01traceId=123\x01logicalCluster=lkc-1\x01\x01"
    parsed = parse_initial_response(data)
    assert parsed.token == "abc.def."
    assert parsed.authzid == "ali,ce="
    assert parsed.extensions == {"traceId": "123", "logicalCluster": "lkc-1"}
    again = parse_initial_response(initial_response("abc.def.", "ali,ce=", parsed.extensions))
    assert again == parsed
    assert parse_initial_response(b"n,,\x01auth=bearer t0k-en\x01\x01").token == "t0k-en"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"y,,\x01auth=Bearer abc\x01\x01", "client first message"),  # channel binding flag
        (b"p=tls-unique,,\x01auth=Bearer abc\x01\x01", "client first message"),
        (b"n,\x01auth=Bearer abc\x01\x01", "client first message"),  # GS2 header unterminated
        (b"n,,auth=Bearer abc\x01\x01", "client first message"),
        (b"n,,\x01auth=Bearer abc\x01", "client first message"),  # not closed by %x01%x01
        (b"n,,\x01\x01", "'auth' not specified"),
        (b"n,,\x01traceId=1\x01\x01", "'auth' not specified"),
        (b"n,,\x01auth=Bearer\x01\x01", "invalid 'auth' format"),
        (b"n,,\x01auth=Bearer a b\x01\x01", "invalid 'auth' format"),
        (b"n,,\x01auth=Basic abc\x01\x01", "Invalid scheme"),
        (b"n,,\x01auth=Bearer abc\x01bad key=1\x01\x01", "client first message"),
        (b"n,,\x01auth=Bearer \xff\x01\x01", "not UTF-8"),
    ],
)
def test_bad_initial_responses(data: bytes, reason: str) -> None:
    with pytest.raises(OAuthBearerError, match=reason):
        parse_initial_response(data)


def test_exchange_success() -> None:
    server = OAuthBearerServer(CONFIG)
    token = _jws({"alg": "none"}, _claims())
    reply, found = server.step(initial_response(token, "alice", {"traceId": "x"}), NOW_MS)
    assert reply == b"" and found is not None and found.principal == "alice"
    assert server.extensions == {"traceId": "x"}


def test_exchange_error_then_client_ack_fails() -> None:
    server = OAuthBearerServer(CONFIG)
    expired = _jws({"alg": "none"}, _claims(exp=NOW - 1))
    reply, found = server.step(initial_response(expired), NOW_MS)
    assert found is None and json.loads(reply) == {"status": "invalid_token"}
    with pytest.raises(TokenRejected, match="expired"):
        server.step(b"\x01", NOW_MS)


def test_exchange_error_then_anything_but_ack_fails() -> None:
    server = OAuthBearerServer(CONFIG)
    server.step(initial_response(_jws({"alg": "HS256"}, _claims())), NOW_MS)
    with pytest.raises(OAuthBearerError, match="expected %x01"):
        server.step(initial_response(_jws({"alg": "none"}, _claims())), NOW_MS)


def test_exchange_authzid_must_be_the_principal() -> None:
    server = OAuthBearerServer(CONFIG)
    with pytest.raises(OAuthBearerError, match="authorization id"):
        server.step(initial_response(_jws({"alg": "none"}, _claims()), "mallory"), NOW_MS)


def test_real_clock_token() -> None:
    token = unsecured_token("carol", lifetime_s=30)
    assert validate(token, CONFIG, time.time() * 1000).principal == "carol"


def test_settings_refuse_oauthbearer_unless_explicitly_unsecured(tmp_path: Any) -> None:
    with pytest.raises(SettingsError, match="kafka_oauthbearer_unsecured = true"):
        Settings(data_dir=tmp_path, kafka_sasl_mechanisms="PLAIN,OAUTHBEARER")
    s = Settings(data_dir=tmp_path, kafka_sasl_mechanisms="oauthbearer", kafka_oauthbearer_unsecured=True)
    assert s.kafka_oauthbearer_config() == ValidatorConfig()
    plain = Settings(data_dir=tmp_path, kafka_sasl_mechanisms="PLAIN", kafka_oauthbearer_unsecured=True)
    assert plain.kafka_oauthbearer_config() is None
    with pytest.raises(SettingsError, match="clock_skew"):
        Settings(data_dir=tmp_path, kafka_oauthbearer_allowable_clock_skew_ms=-1)
    with pytest.raises(SettingsError, match="blank"):
        Settings(data_dir=tmp_path, kafka_oauthbearer_principal_claim_name=" ")
    scoped = Settings(
        data_dir=tmp_path,
        kafka_sasl_mechanisms="OAUTHBEARER",
        kafka_oauthbearer_unsecured=True,
        kafka_oauthbearer_required_scope="a  b",
        kafka_oauthbearer_allowable_clock_skew_ms=100,
    )
    assert scoped.kafka_oauthbearer_config() == ValidatorConfig(
        required_scope=("a", "b"), allowable_clock_skew_ms=100
    )


def test_a_broker_without_oauthbearer_refuses_the_handshake(sasl_broker: Any) -> None:
    from tests.kafka_frontend.wire import WireClient, request

    with WireClient(sasl_broker.kafka_bootstrap) as client:
        response = client.call(request(17, 1, mechanism="OAUTHBEARER"))  # SaslHandshake
        assert response.error_code == 33  # UNSUPPORTED_SASL_MECHANISM
        assert "OAUTHBEARER" not in response.mechanisms
