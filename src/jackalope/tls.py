"""The listeners' TLS: one :class:`ssl.SSLContext` built from settings, for AMQP and Kafka alike.

The options mirror RabbitMQ's ``ssl_options``: a certificate (chain) and its private key, the
CA certificates client certificates are checked against (``cacertfile``), ``verify``
(``verify_none``: no client certificate is asked for; ``verify_peer``: one is asked for and,
if sent, must be signed by those CAs) and ``fail_if_no_peer_cert`` (with ``verify_peer``: a
client without a certificate is refused in the handshake).  TLS 1.2 and 1.3 only, as RabbitMQ.

Every file is checked on its own, so a start-up error names the file at fault.
"""

from __future__ import annotations

import ssl
from enum import Enum
from typing import NoReturn

from jackalope.datadir import StartupError


class Verify(Enum):
    NONE = "verify_none"
    PEER = "verify_peer"


VERIFY_VALUES = tuple(v.value for v in Verify)


class _Encrypted(Exception):
    """The key file asks for a password (never prompted for)."""


def _no_password() -> NoReturn:
    raise _Encrypted


def _reason(exc: OSError) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    return exc.strerror or str(exc)


def server_context(
    listener: str,
    certfile: str,
    keyfile: str,
    *,
    cafile: str = "",
    verify: Verify = Verify.NONE,
    fail_if_no_peer_cert: bool = False,
) -> ssl.SSLContext:
    """A server-side context for the ``listener`` (a name for errors: "AMQP", "Kafka").

    Raises :class:`StartupError` naming the file that cannot be read or used."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # The certificate file alone first (a scratch context parses it), so that its errors are
    # told apart from the key's.
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_verify_locations(cafile=certfile)
    except OSError as exc:
        raise StartupError(
            f"cannot load the {listener} TLS certificate file {certfile}: {_reason(exc)}"
        ) from None
    try:
        with open(keyfile, "rb"):
            pass
    except OSError as exc:
        raise StartupError(f"cannot load the {listener} TLS key file {keyfile}: {_reason(exc)}") from None
    try:
        context.load_cert_chain(certfile, keyfile, password=_no_password)
    except _Encrypted:
        raise StartupError(
            f"cannot load the {listener} TLS key file {keyfile}: it is encrypted (a key without a "
            "password is needed)"
        ) from None
    except OSError as exc:
        raise StartupError(
            f"cannot load the {listener} TLS key file {keyfile}: {_reason(exc)} "
            f"(it must be the PEM private key of {certfile})"
        ) from None
    if cafile:
        try:
            context.load_verify_locations(cafile=cafile)
        except OSError as exc:
            raise StartupError(f"cannot load the {listener} TLS CA file {cafile}: {_reason(exc)}") from None
    if verify is Verify.PEER:
        context.verify_mode = ssl.CERT_REQUIRED if fail_if_no_peer_cert else ssl.CERT_OPTIONAL
    return context
