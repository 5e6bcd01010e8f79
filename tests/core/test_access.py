"""The user store, password hashes, SCRAM credentials, permission matching and the login rules,
in the core (no protocol)."""

from __future__ import annotations

import base64
import json
import re
import stat
from pathlib import Path

import pytest
import scramp
from hypothesis import given
from hypothesis import strategies as st

from jackalope.core import passwords
from jackalope.core.access import AccessControl, LoginRefused, is_loopback
from jackalope.core.errors import AccessRefused, NotAllowed
from jackalope.core.permissions import BadPermission, Grant, Permission
from jackalope.core.users import BadUser, User, parse_tags

# Made by RabbitMQ 3.10.8: `rabbitmqctl add_user jk-probe s3cret`, then export_definitions.
RABBITMQ_USER = {
    "hashing_algorithm": "rabbit_password_hashing_sha256",
    "limits": {},
    "name": "jk-probe",
    "password_hash": "A2dFmf+ImwtiKO0ykz6fDNNjLNGlZ/M+6RrktTZ+DBZRLrkW",
    "tags": ["monitoring", "foo"],
}


def test_a_rabbitmq_hash_checks_and_is_rebuilt_from_its_salt() -> None:
    hashed = RABBITMQ_USER["password_hash"]
    assert passwords.check_password(hashed, passwords.SHA256, "s3cret")
    assert not passwords.check_password(hashed, passwords.SHA256, "s3cret ")
    salt = base64.b64decode(hashed)[:4]
    assert passwords.hash_password("s3cret", passwords.SHA256, salt) == hashed


@pytest.mark.parametrize("algorithm", [passwords.SHA256, passwords.SHA512, passwords.MD5])
def test_every_scheme_round_trips_with_a_fresh_salt(algorithm: str) -> None:
    one, two = passwords.hash_password("pw", algorithm), passwords.hash_password("pw", algorithm)
    assert one != two  # salted
    assert passwords.check_password(one, algorithm, "pw")
    assert not passwords.check_password(one, algorithm, "Pw")
    passwords.validate_hash(one, algorithm)


def test_bad_hashes_are_refused_by_name() -> None:
    with pytest.raises(passwords.BadHash, match="unknown hashing_algorithm 'rabbit_password_hashing_sha1'"):
        passwords.validate_hash("abcd", "rabbit_password_hashing_sha1")
    with pytest.raises(passwords.BadHash, match="not valid base64"):
        passwords.validate_hash("!!!", passwords.SHA256)
    with pytest.raises(passwords.BadHash, match="holds 36 bytes, not 3"):
        passwords.validate_hash(base64.b64encode(b"abc").decode(), passwords.SHA256)
    assert not passwords.check_password("", passwords.SHA256, "")  # no password: nothing matches


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_scram_credentials_are_those_a_scram_client_proves_against(mechanism: str) -> None:
    credential = passwords.scram_credential(mechanism, "pässword")
    server = scramp.ScramMechanism(mechanism).make_server(
        lambda _user: (credential.salt, credential.stored_key, credential.server_key, credential.iterations)
    )
    client = scramp.ScramClient([mechanism], "alice", "pässword")
    server.set_client_first(client.get_client_first())
    client.set_server_first(server.get_server_first())
    server.set_client_final(client.get_client_final())
    client.set_server_final(server.get_server_final())  # raises if the server's signature is wrong
    assert passwords.ScramCredential.from_json(credential.to_json()) == credential


def test_a_user_imported_with_a_hash_logs_in_but_has_no_scram_credentials() -> None:
    user = User.from_definition(RABBITMQ_USER)
    assert user.check_password("s3cret")
    assert user.tags == ("monitoring", "foo")  # unknown tags are kept
    assert user.scram == {}
    user.set_password("new")
    assert set(user.scram) == {"SCRAM-SHA-256", "SCRAM-SHA-512"}
    assert not user.check_password("s3cret")


def test_tags_are_a_list_or_a_comma_separated_string() -> None:
    assert parse_tags("administrator, management,,administrator") == ("administrator", "management")
    assert parse_tags(["monitoring"]) == ("monitoring",)
    with pytest.raises(BadUser):
        parse_tags(3)


def test_permissions_match_anywhere_and_the_empty_one_matches_nothing_but_empty() -> None:
    p = Permission(configure="", write="^amq\\.default$|^logs", read="tmp")
    assert not p.allows("configure", "q")
    assert p.allows("configure", "")
    assert p.allows("write", "amq.default")
    assert p.allows("write", "logs.x")
    assert not p.allows("write", "x.logs")
    assert p.allows("read", "a.tmp.b")  # unanchored, as Erlang's re:run
    with pytest.raises(BadPermission, match="invalid regular expression"):
        Permission(configure="(")


NO_NEWLINE = st.characters(blacklist_characters="\n")


@given(st.text(NO_NEWLINE, min_size=1, max_size=20), st.text(NO_NEWLINE, max_size=20))
def test_an_escaped_name_as_a_pattern_allows_exactly_that_name(name: str, other: str) -> None:
    p = Permission(configure=f"^{re.escape(name)}$", write="", read="")
    assert p.allows("configure", name)
    assert p.allows("configure", other) == (other == name)
    assert p.allows("write", other) == (other == "")


def test_dollar_matches_before_a_final_newline_as_in_pcre() -> None:
    # Erlang's re (PCRE) without dollar_endonly, as RabbitMQ runs it: "^$" matches "\n" too.
    assert Permission(configure="^q$").allows("configure", "q\n")
    assert Permission(configure="").allows("configure", "\n")


class Source:
    def __init__(self, permission: Permission | None) -> None:
        self.generation = 0
        self.value = permission

    def permission(self, user: str, vhost: str) -> Permission | None:
        return self.value


def test_a_grant_names_the_default_exchange_amq_default_and_forgets_on_change() -> None:
    source = Source(Permission(write="^amq\\.default$"))
    grant = Grant(source, "u", "v")  # type: ignore[arg-type]
    grant.check_publish("")
    with pytest.raises(AccessRefused, match="access to exchange 'x' in vhost 'v' refused for user 'u'"):
        grant.check_publish("x")
    source.value = Permission(write="^x$")
    grant.check_publish("")  # remembered: no new permission generation yet
    source.generation += 1
    with pytest.raises(AccessRefused, match=re.escape("access to exchange 'amq.default' in vhost 'v'")):
        grant.check_publish("")
    source.value = None
    with pytest.raises(AccessRefused, match="access to queue 'q' in vhost 'v' refused for user 'u'"):
        grant.check("read", "queue", "q")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("192.0.2.2", False),
        ("::ffff:192.0.2.2", False),
        ("", False),
        (None, False),
        ("name", False),
    ],
)
def test_loopback_addresses(host: str | None, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_guest_logs_in_only_from_loopback_unless_configured() -> None:
    access = AccessControl()
    access.create_default("guest", "guest")
    assert access.login("guest", "guest", "127.0.0.1").name == "guest"
    with pytest.raises(LoginRefused, match="user 'guest' can only connect via localhost"):
        access.login("guest", "guest", "192.0.2.2")
    with pytest.raises(LoginRefused, match="invalid credentials"):
        access.login("guest", "nope", "127.0.0.1")
    assert access.authenticate("guest", "guest")  # the password alone, for other front-ends
    open_access = AccessControl(loopback_users=())
    open_access.create_default("guest", "guest")
    assert open_access.login("guest", "guest", "192.0.2.2").name == "guest"


def test_the_store_survives_a_reload_without_plaintext(tmp_path: Path) -> None:
    access = AccessControl(tmp_path)
    assert not access.load(["/"])  # a first start
    access.create_default("admin", "top-secret-pw")
    access.put_user("bob", password="bobs-pw", tags="management")
    access.set_permission("bob", "/", Permission("^bob", ".*", ""))
    stored = tmp_path / "users.json"
    assert stat.S_IMODE(stored.stat().st_mode) & 0o077 == 0
    text = stored.read_text()
    assert "top-secret-pw" not in text and "bobs-pw" not in text
    again = AccessControl(tmp_path)
    assert again.load(["/"])
    assert again.authenticate("bob", "bobs-pw") and again.authenticate("admin", "top-secret-pw")
    assert again.users["bob"].scram == access.users["bob"].scram
    assert again.permission("bob", "/") == Permission("^bob", ".*", "")
    assert again.users["admin"].tags == ("administrator",)
    again.check_vhost_access("bob", "/")
    with pytest.raises(NotAllowed, match="access to vhost 'other' refused for user 'bob'"):
        again.check_vhost_access("bob", "other")


def test_a_damaged_store_is_an_error_not_an_empty_one(tmp_path: Path) -> None:
    (tmp_path / "users.json").write_text(json.dumps({"users": [{"name": "x", "password_hash": "!!"}]}))
    damaged = re.escape("users.json is damaged: password_hash is not valid base64")
    with pytest.raises(ValueError, match=damaged):
        AccessControl(tmp_path).load(["/"])


def test_permissions_of_a_gone_vhost_are_dropped_on_load(tmp_path: Path) -> None:
    access = AccessControl(tmp_path)
    access.create_default("admin", "pw")
    access.set_permission("admin", "old", Permission())
    again = AccessControl(tmp_path)
    again.load(["/"])
    assert again.permission("admin", "old") is None and again.permission("admin", "/") is not None


def test_importing_rabbitmq_definitions_is_all_or_nothing() -> None:
    access = AccessControl()
    good = {
        "users": [RABBITMQ_USER],
        "permissions": [{"user": "jk-probe", "vhost": "/", "configure": "", "write": "", "read": ".*"}],
    }
    bad = {
        "users": [RABBITMQ_USER],
        "permissions": [{"user": "ghost", "vhost": "/", "configure": "", "write": "", "read": ""}],
    }
    with pytest.raises(BadUser, match="permission of user 'ghost' in vhost '/': no user 'ghost'"):
        access.import_definitions(bad, ["/"])
    assert access.users == {}
    access.import_definitions(good, ["/"])
    assert access.authenticate("jk-probe", "s3cret")
    legacy = {
        "rabbit_version": "3.5.7",
        "users": [{"name": "old", "password_hash": passwords.hash_password("pw", passwords.MD5)}],
    }
    access.import_definitions(legacy, ["/"])
    assert access.users["old"].hashing_algorithm == passwords.MD5
    assert access.authenticate("old", "pw")
