"""Settings precedence: defaults < TOML file < JACKALOPE_* environment < flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from jackalope import settings
from jackalope.storage import Durability


def test_defaults() -> None:
    s = settings.load({}, environ={})
    assert s.data_dir == Path("jackalope-data")
    assert s.http_port == 15672
    assert s.durability == "always"


def test_precedence(tmp_path: Path) -> None:
    toml = tmp_path / "jackalope.toml"
    toml.write_text('http-port = 1000\nlog_level = "debug"\ndurability = "never"\nsegment_bytes = 4096\n')
    env = {"JACKALOPE_HTTP_PORT": "2000", "JACKALOPE_DURABILITY": "interval"}
    s = settings.load({"durability": "always", "host": None}, environ=env, config_file=toml)
    assert s.http_port == 2000  # env beats the file
    assert s.durability == "always"  # the flag beats env
    assert s.log_level == "debug"  # from the file
    assert s.segment_bytes == 4096
    assert s.host == "127.0.0.1"  # an unset flag is ignored
    assert s.log_config().durability is Durability.ALWAYS


def test_config_file_from_environment(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text("retention_bytes = 1_000\n")
    s = settings.load({}, environ={"JACKALOPE_CONFIG": str(toml)})
    assert s.retention_bytes == 1000


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("bogus = 1\n", "unknown setting 'bogus'"),
        ('http_port = "x"\n', "http_port must be int"),
        ("http_port = [\n", "config file"),
        ('durability = "sometimes"\n', "durability must be"),
        ("segment_bytes = 10\n", "segment_bytes must be at least"),
    ],
)
def test_bad_file(tmp_path: Path, content: str, message: str) -> None:
    toml = tmp_path / "bad.toml"
    toml.write_text(content)
    with pytest.raises(settings.SettingsError, match=message):
        settings.load({}, environ={}, config_file=toml)


def test_bad_environment() -> None:
    with pytest.raises(settings.SettingsError, match="JACKALOPE_HTTP_PORT: http_port must be int"):
        settings.load({}, environ={"JACKALOPE_HTTP_PORT": "eighty"})


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(settings.SettingsError, match="cannot read config file"):
        settings.load({}, environ={}, config_file=tmp_path / "nope.toml")


def test_amqps_defaults_to_5671_listening_only_with_a_certificate() -> None:
    s = settings.load({}, environ={})
    assert (s.amqp_tls_port, s.amqp_tls_certfile, s.amqp_tls_verify) == (5671, "", "verify_none")
    assert s.amqp_tls_fail_if_no_peer_cert is False


def test_amqps_settings_from_the_environment() -> None:
    env = {
        "JACKALOPE_AMQP_TLS_CERTFILE": "c.pem",
        "JACKALOPE_AMQP_TLS_KEYFILE": "k.pem",
        "JACKALOPE_AMQP_TLS_CAFILE": "ca.pem",
        "JACKALOPE_AMQP_TLS_VERIFY": "verify_peer",
        "JACKALOPE_AMQP_TLS_FAIL_IF_NO_PEER_CERT": "true",
    }
    s = settings.load({}, environ=env)
    assert (s.amqp_tls_certfile, s.amqp_tls_cafile, s.amqp_tls_fail_if_no_peer_cert) == (
        "c.pem",
        "ca.pem",
        True,
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"amqp_tls_certfile": "c.pem"}, "amqp_tls_certfile and amqp_tls_keyfile go together"),
        ({"amqp_tls_keyfile": "k.pem"}, "amqp_tls_certfile and amqp_tls_keyfile go together"),
        ({"amqp_tls_verify": "verify_some"}, "amqp_tls_verify must be verify_none or verify_peer"),
        ({"amqp_tls_verify": "verify_peer"}, "verify_peer needs amqp_tls_cafile"),
        ({"amqp_tls_fail_if_no_peer_cert": True}, "needs amqp_tls_verify=verify_peer"),
        ({"amqp_tls_port": 70000}, "amqp_tls_port 70000 is not a port number"),
    ],
)
def test_bad_amqps_settings(changes: dict[str, object], message: str) -> None:
    with pytest.raises(settings.SettingsError, match=message):
        settings.load(changes, environ={})


def test_group_session_timeout_bounds() -> None:
    s = settings.load({}, environ={})
    assert (s.kafka_group_min_session_timeout_ms, s.kafka_group_max_session_timeout_ms) == (6000, 1_800_000)
    for bad in ({"kafka_group_min_session_timeout_ms": 0}, {"kafka_group_max_session_timeout_ms": 5000}):
        with pytest.raises(settings.SettingsError, match="kafka_group_min_session_timeout_ms"):
            settings.load(bad, environ={})
