"""The sans-IO SCRAM server (kafka/scram.py): RFC 7677's test vector, round trips against
scramp's client (a separate implementation), and each refusal RFC 5802 and Kafka define."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from unittest import mock

import pytest
import scramp
import scramp.core
from hypothesis import given, settings
from hypothesis import strategies as st

from jackalope.core.passwords import ScramCredential, scram_credential
from jackalope.kafka import scram
from jackalope.kafka.scram import ScramError, ScramServer

MECHANISMS = ["SCRAM-SHA-256", "SCRAM-SHA-512"]


def server_for(credentials: dict[str, ScramCredential], mechanism: str = "SCRAM-SHA-256") -> ScramServer:
    return ScramServer(mechanism, credentials.get)


@pytest.fixture(autouse=True, scope="module")
def short_salts() -> Iterator[None]:
    """scramp's client refuses salts under 12 bytes; RFC 5802 and Kafka set no floor."""
    with mock.patch.object(scramp.core.Salt, "MIN_LENGTH", 1):
        yield


def test_rfc7677_test_vector() -> None:
    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    credential = scram_credential("SCRAM-SHA-256", "pencil", 4096, salt)
    server = ScramServer(
        "SCRAM-SHA-256", {"user": credential}.get, nonce=lambda: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    )
    first = server.first(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
    assert first == (
        b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    )
    final = server.final(
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    )
    assert final == b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    assert server.complete and server.username == "user"


def _exchange(server: ScramServer, client: scramp.ScramClient) -> None:
    first = server.first(client.get_client_first().encode())
    client.set_server_first(first.decode())
    final = server.final(client.get_client_final().encode())
    client.set_server_final(final.decode())  # checks the server's signature


# user names with the characters SCRAM escapes; passwords that SASLprep (which scramp's client
# applies and Kafka's does not) leaves unchanged
NAMES = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=20)
PASSWORDS = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=30)


@settings(max_examples=25, deadline=None)
@given(
    mechanism=st.sampled_from(MECHANISMS),
    user=NAMES,
    password=PASSWORDS,
    salt=st.binary(min_size=1, max_size=64),
    iterations=st.sampled_from([4096, 4097, 5000]),
)
def test_round_trip_with_scramp_client(
    mechanism: str, user: str, password: str, salt: bytes, iterations: int
) -> None:
    credential = scram_credential(mechanism, password, iterations, salt)
    server = server_for({user: credential}, mechanism)
    _exchange(server, scramp.ScramClient([mechanism], user, password))
    assert server.complete and server.username == user


@settings(max_examples=15, deadline=None)
@given(mechanism=st.sampled_from(MECHANISMS), password=PASSWORDS, wrong=PASSWORDS)
def test_a_wrong_password_is_an_invalid_proof(mechanism: str, password: str, wrong: str) -> None:
    if wrong == password:
        wrong += "x"
    server = server_for({"u": scram_credential(mechanism, password, 4096, b"s")}, mechanism)
    client = scramp.ScramClient([mechanism], "u", wrong)
    client.set_server_first(server.first(client.get_client_first().encode()).decode())
    with pytest.raises(ScramError) as info:
        server.final(client.get_client_final().encode())
    assert info.value.error == scram.INVALID_PROOF
    assert not server.complete


CREDENTIAL = scram_credential("SCRAM-SHA-256", "pw", 4096, b"salt")


def _refused(message: bytes, error: str, credentials: dict[str, ScramCredential] | None = None) -> None:
    server = server_for({"user": CREDENTIAL} if credentials is None else credentials)
    with pytest.raises(ScramError) as info:
        server.first(message)
    assert info.value.error == error, info.value.detail


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (b"\xff\xfe", scram.INVALID_ENCODING),
        (b"n,,n=user", scram.INVALID_ENCODING),  # no nonce
        (b"n,,r=abc,n=user", scram.INVALID_ENCODING),  # attributes out of order
        (b"x,,n=user,r=abc", scram.INVALID_ENCODING),  # no such channel-binding flag
        (b"n,,n=,r=abc", scram.INVALID_ENCODING),  # empty user name
        (b"n,,n=user,r=", scram.INVALID_ENCODING),  # empty nonce
        (b"n,,n=user,r=a\x7fb", scram.INVALID_ENCODING),  # not printable
        (b"n,,n=us=2Xer,r=abc", scram.INVALID_USERNAME_ENCODING),
        (b"n,,n=user,r=abc,1=x", scram.INVALID_ENCODING),  # extension names are letters
        (b"p=tls-unique,,n=user,r=abc", scram.CHANNEL_BINDING_NOT_SUPPORTED),
        (b"n,,m=ext,n=user,r=abc", scram.EXTENSIONS_NOT_SUPPORTED),
        (b"n,,n=user,r=abc,tokenauth=true", scram.EXTENSIONS_NOT_SUPPORTED),
        (b"n,a=other,n=user,r=abc", scram.OTHER_ERROR),  # authzid other than the user
        (b"n,,n=nobody,r=abc", scram.UNKNOWN_USER),
    ],
)
def test_client_first_refusals(message: bytes, error: str) -> None:
    _refused(message, error)


def test_unknown_extensions_are_ignored_and_escapes_undone() -> None:
    server = server_for({"a,b=c": CREDENTIAL})
    reply = server.first(b"n,a=a=2Cb=3Dc,n=a=2Cb=3Dc,r=abc,foo=bar")
    assert reply.startswith(b"r=abc") and server.username == "a,b=c"
    assert server_for({"u": CREDENTIAL}).first(b"n,,n=u,r=abc,tokenauth=false").startswith(b"r=abc")


def test_too_few_iterations() -> None:
    weak = scram_credential("SCRAM-SHA-256", "pw", 4095, b"salt")
    _refused(b"n,,n=user,r=abc", scram.OTHER_ERROR, {"user": weak})


def _started() -> tuple[ScramServer, scramp.ScramClient]:
    server = server_for({"user": CREDENTIAL})
    client = scramp.ScramClient(["SCRAM-SHA-256"], "user", "pw")
    client.set_server_first(server.first(client.get_client_first().encode()).decode())
    return server, client


def _final_refused(server: ScramServer, message: str, error: str) -> None:
    with pytest.raises(ScramError) as info:
        server.final(message.encode())
    assert info.value.error == error, info.value.detail


def test_client_final_refusals() -> None:
    server, client = _started()
    good = client.get_client_final()
    c, r, p = good.split(",")
    _final_refused(server, f"c=eSws,{r},{p}", scram.CHANNEL_BINDINGS_DONT_MATCH)  # "y,,"
    server, client = _started()
    good = client.get_client_final()
    c, r, p = good.split(",")
    _final_refused(server, f"{c},{r}x,{p}", scram.OTHER_ERROR)  # the nonce changed
    server, client = _started()
    good = client.get_client_final()
    c, r, p = good.split(",")
    _final_refused(server, f"{c},{r},p=!!", scram.INVALID_ENCODING)
    server, client = _started()
    c, r, p = client.get_client_final().split(",")
    _final_refused(server, f"{c},{r}", scram.INVALID_ENCODING)  # no proof
    server, client = _started()
    c, r, p = client.get_client_final().split(",")
    _final_refused(server, f"{c},{r},p=AAAA", scram.INVALID_PROOF)  # wrong length


def test_one_attempt_per_exchange() -> None:
    server, client = _started()
    final = client.get_client_final()
    with pytest.raises(ScramError):
        server.first(b"n,,n=user,r=abc")
    server.final(final.encode())
    with pytest.raises(ScramError):
        server.final(final.encode())
    fresh = server_for({"user": CREDENTIAL})
    with pytest.raises(ScramError):
        fresh.final(final.encode())
