"""SASL authentication: SaslHandshake and SaslAuthenticate with PLAIN and SCRAM-SHA-256/512.

A client names its mechanism in SaslHandshake, then sends the mechanism's tokens wrapped in
SaslAuthenticate requests (KIP-152).  SaslHandshake v0, after which the raw tokens follow as
bare size-prefixed frames, is not offered: kafka-python, aiokafka and librdkafka all use v1
when the broker offers it.

SCRAM (RFC 5802, RFC 7677) is served by ``scramp``.  The broker's users have plaintext
passwords (:attr:`BrokerCore.users`); the SCRAM stored and server keys are derived from them
with 4096 iterations and a salt per user, random for each process.  An unknown user gets
keys of a random password so the exchange fails at the proof, like a wrong password does.

A failed authentication is answered with SASL_AUTHENTICATION_FAILED and the connection is
closed once that response is written, as Kafka does.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import logging
import os
from dataclasses import dataclass
from typing import Any

import scramp

from jackalope.core import BrokerCore
from jackalope.kafka.context import RequestContext
from jackalope.kafka.handlers import Api
from jackalope.kafka.protocol import ApiKey, ErrorCode, build, response_module

log = logging.getLogger(__name__)

SCRAM_ITERATIONS = 4096
FAILED_AUTH_CLOSE_DELAY = 0.1  # seconds
FAILED = "failed"  # the connection's sasl_state after a failure, until it closes

_SALT_KEY = os.urandom(32)
_decoy_password = os.urandom(24).hex()


def _salt(user: str) -> bytes:
    """A per-process random salt for ``user``, derived rather than stored, so that clients
    trying made-up user names cannot grow the broker's memory."""
    return hmac.new(_SALT_KEY, user.encode(), hashlib.sha256).digest()[:16]


@functools.lru_cache(maxsize=1024)
def _scram_keys(mechanism: str, password: str, salt: bytes) -> tuple[bytes, bytes, bytes, int]:
    """``(salt, stored_key, server_key, iterations)`` as scramp's ``auth_fn`` returns them."""
    salt_, stored_key, server_key, iterations = scramp.ScramMechanism(mechanism).make_auth_info(
        password, iteration_count=SCRAM_ITERATIONS, salt=salt
    )
    return bytes(salt_), bytes(stored_key), bytes(server_key), int(iterations)


class AuthenticationFailed(Exception):
    """The message goes to the client in the SaslAuthenticate response."""


def _invalid_credentials(mechanism: str) -> AuthenticationFailed:
    return AuthenticationFailed(
        "Authentication failed during authentication due to invalid credentials "
        f"with SASL mechanism {mechanism}"
    )


@dataclass
class SaslExchange:
    """The connection's ``sasl_state`` between SaslHandshake and a successful SaslAuthenticate."""

    mechanism: str
    scram: Any = None  # scramp.ScramServer once the client-first message arrived
    user: str | None = None

    def step(self, core: BrokerCore, token: bytes) -> tuple[bytes, str | None]:
        """Consume one client token: ``(server token, authenticated user or None)``."""
        if self.mechanism == "PLAIN":
            return b"", self._plain(core, token)
        return self._scram_step(core, token)

    def _plain(self, core: BrokerCore, token: bytes) -> str:
        # RFC 4616: [authzid] NUL authcid NUL passwd
        parts = token.split(b"\0")
        if len(parts) != 3:
            raise AuthenticationFailed("Invalid SASL/PLAIN response: expected 3 tokens")
        try:
            authzid, user, password = (p.decode() for p in parts)
        except UnicodeDecodeError:
            raise AuthenticationFailed("Invalid SASL/PLAIN response: not UTF-8") from None
        if not user:
            raise AuthenticationFailed("Authentication failed: username not specified")
        self.user = user
        if authzid and authzid != user:
            raise AuthenticationFailed(
                "Authentication failed: Client requested an authorization id that is different from username"
            )
        if not core.authenticate(user, password):
            raise _invalid_credentials(self.mechanism)
        return user

    def _scram_step(self, core: BrokerCore, token: bytes) -> tuple[bytes, str | None]:
        try:
            message = token.decode()
        except UnicodeDecodeError:
            raise AuthenticationFailed("Authentication failed: SCRAM message is not UTF-8") from None
        try:
            if self.scram is None:
                self.scram = scramp.ScramMechanism(self.mechanism).make_server(
                    functools.partial(self._auth_info, core)
                )
                self.scram.set_client_first(message)
                return str(self.scram.get_server_first()).encode(), None
            self.scram.set_client_final(message)
            final = str(self.scram.get_server_final()).encode()
        except scramp.ScramException as exc:
            server_error = getattr(exc, "server_error", None)  # a scramp.utils.ServerError
            if getattr(server_error, "value", None) == "invalid-proof":
                raise _invalid_credentials(self.mechanism) from None
            raise AuthenticationFailed(f"Authentication failed: {exc}") from None
        return final, self.user

    def _auth_info(self, core: BrokerCore, user: str) -> tuple[bytes, bytes, bytes, int]:
        self.user = user
        password = core.users.get(user)
        return _scram_keys(self.mechanism, _decoy_password if password is None else password, _salt(user))


def _close_after_response(ctx: RequestContext) -> None:
    """Close the connection a little after the response being returned has been written.

    The connection writes a handler's response in the event-loop step the handler returns
    in, and a transport closes only after writing out what it buffered.  Like Kafka
    (``connection.failed.authentication.delay.ms``, 100 ms) the close is delayed: clients
    that drop data read together with the end of the stream then still see the error, and
    password guessing is slowed down.  Until then the connection accepts no SASL request.
    """
    ctx.connection.sasl_state = FAILED
    asyncio.get_running_loop().call_later(
        FAILED_AUTH_CLOSE_DELAY, ctx.connection.close, "SASL authentication failed"
    )


async def handle_sasl_handshake(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.SASL_HANDSHAKE, ctx.api_version)
    enabled = ctx.broker.sasl_mechanisms
    conn = ctx.connection
    if conn.authenticated:
        # as Kafka: a handshake on an authenticated (or non-SASL) connection is out of place
        return build(mod.SaslHandshakeResponse, error_code=ErrorCode.illegal_sasl_state, mechanisms=enabled)
    if conn.sasl_state is not None:
        _close_after_response(ctx)
        return build(mod.SaslHandshakeResponse, error_code=ErrorCode.illegal_sasl_state, mechanisms=enabled)
    if request.mechanism not in enabled:
        log.info(
            "kafka SASL mechanism not enabled",
            extra={"client": conn.client_host, "mechanism": request.mechanism},
        )
        _close_after_response(ctx)
        return build(
            mod.SaslHandshakeResponse, error_code=ErrorCode.unsupported_sasl_mechanism, mechanisms=enabled
        )
    conn.sasl_state = SaslExchange(request.mechanism)
    return build(mod.SaslHandshakeResponse, error_code=ErrorCode.none, mechanisms=enabled)


async def handle_sasl_authenticate(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.SASL_AUTHENTICATE, ctx.api_version)
    conn = ctx.connection
    state = conn.sasl_state

    def failed(code: int, message: str) -> Any:
        return build(
            mod.SaslAuthenticateResponse,
            error_code=code,
            error_message=message,
            auth_bytes=b"",
            session_lifetime=0,
        )

    if conn.authenticated:
        return failed(ErrorCode.illegal_sasl_state, "the connection is already authenticated")
    if not isinstance(state, SaslExchange):
        _close_after_response(ctx)
        return failed(ErrorCode.illegal_sasl_state, "SaslAuthenticate before SaslHandshake")
    try:
        token, user = state.step(ctx.broker.core, request.auth_bytes)
    except AuthenticationFailed as exc:
        log.info(
            "kafka SASL authentication failed",
            extra={"client": conn.client_host, "mechanism": state.mechanism, "user": state.user},
        )
        _close_after_response(ctx)
        return failed(ErrorCode.sasl_authentication_failed, str(exc))
    if user is not None:
        conn.sasl_state = None
        conn.authenticated = True
        conn.principal = user
    return build(
        mod.SaslAuthenticateResponse,
        error_code=ErrorCode.none,
        error_message=None,
        auth_bytes=token,
        session_lifetime=0,
    )


APIS = [
    Api(ApiKey.SASL_HANDSHAKE, 1, 1, handle_sasl_handshake, before_auth=True),
    Api(ApiKey.SASL_AUTHENTICATE, 0, 2, handle_sasl_authenticate, before_auth=True),
]
