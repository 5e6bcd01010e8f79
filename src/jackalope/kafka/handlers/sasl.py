"""SASL authentication: SaslHandshake and SaslAuthenticate with PLAIN, SCRAM-SHA-256/512 and OAUTHBEARER.

A client names its mechanism in SaslHandshake, then sends the mechanism's tokens wrapped in
SaslAuthenticate requests (KIP-152).  After a SaslHandshake v0 the tokens follow instead as
bare size-prefixed frames, answered with bare frames (:func:`raw_token`, as Kafka's
``SaslServerAuthenticator`` without the authenticate headers): old clients (librdkafka with
``broker.version.fallback`` below 1.0) use it.  A failure there cannot be told: the
connection is closed.

The users are the broker's (the same as AMQP's and the HTTP API's).  SCRAM (RFC 5802, RFC
7677) is served by :mod:`jackalope.kafka.scram` from the SCRAM credentials the user store
keeps for each user (made whenever a password is set, or by AlterUserScramCredentials, as
Kafka stores them).  An unknown user, or one imported
with only a RabbitMQ password hash (no SCRAM credentials), gets the keys of a random password
so the exchange fails at the proof, like a wrong password does.  The loopback rule
(``loopback_users``) holds here too.

OAUTHBEARER (RFC 7628, KIP-255) is served by :mod:`jackalope.kafka.oauthbearer` with Kafka's
unsecured validator, for development and testing only: it trusts any unsigned token, so it is
served only when ``kafka_oauthbearer_unsecured`` allows it.  The principal is the token's
``sub`` claim, which need not name a broker user (ACLs decide what it may do; one that names an
administrator-tagged user is a super user, and the loopback rule holds for it); the session
ends at the token's expiry, or earlier at ``connections_max_reauth_ms``, as Kafka's does.

A failed authentication is answered with SASL_AUTHENTICATION_FAILED and the connection is
closed once that response is written, as Kafka does.

KIP-368: with ``connections_max_reauth_ms`` set, a successful authentication starts a session
of that lifetime (told in SaslAuthenticate v1+); the connection then accepts a new
SaslHandshake (at most once a second) and exchange, with the same mechanism and principal,
which starts a new session.  The connection (kafka/connection.py) closes itself at its first
other request after the session's end.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

from jackalope.core import BrokerCore
from jackalope.core.access import LoginRefused
from jackalope.core.passwords import SCRAM_ITERATIONS, ScramCredential, scram_credential
from jackalope.kafka.context import ConnectionState, KafkaBroker, RequestContext
from jackalope.kafka.handlers import Api
from jackalope.kafka.oauthbearer import OAuthBearerError, OAuthBearerServer, TokenRejected
from jackalope.kafka.protocol import ApiKey, ErrorCode, build, response_module
from jackalope.kafka.scram import INVALID_PROOF, UNKNOWN_USER, ScramError, ScramServer

log = logging.getLogger(__name__)

FAILED_AUTH_CLOSE_DELAY = 0.1  # seconds
FAILED = "failed"  # the connection's sasl_state after a failure, until it closes
OAUTHBEARER = "OAUTHBEARER"
MAX_SESSION_MS = 10**15  # a token's far-off exp: a session lifetime that still encodes
REAUTH_MIN_INTERVAL = 1.0  # seconds between re-authentications (Kafka's MIN_REAUTH_INTERVAL_ONE_SECOND)

_DECOY_PASSWORD = os.urandom(24).hex()
_DECOY_SALT_KEY = os.urandom(32)


@functools.lru_cache(maxsize=1024)
def _decoy(mechanism: str, user: str) -> ScramCredential:
    """The credential offered for a user who has none: a random password's, with a salt of
    the user's own (derived, not stored), so that the salt does not tell users apart."""
    salt = hmac.new(_DECOY_SALT_KEY, user.encode(), hashlib.sha256).digest()
    return scram_credential(mechanism, _DECOY_PASSWORD, SCRAM_ITERATIONS, salt)


class AuthenticationFailed(Exception):
    """The message goes to the client in the SaslAuthenticate response."""


def _invalid_credentials(mechanism: str, reauthenticating: bool = False) -> AuthenticationFailed:
    during = "re-authentication" if reauthenticating else "authentication"
    return AuthenticationFailed(
        f"Authentication failed during {during} due to invalid credentials with SASL mechanism {mechanism}"
    )


@dataclass
class SaslExchange:
    """The connection's ``sasl_state`` between SaslHandshake and a successful SaslAuthenticate."""

    mechanism: str
    peer_host: str | None = None  # the client's address (the loopback rule)
    scram: ScramServer | None = None  # once the client-first message arrived
    user: str | None = None
    reauth_of: str | None = None  # KIP-368: the connection's principal, when re-authenticating
    refusal: str | None = None  # a re-authentication refused at the handshake, told at the next token
    oauth: OAuthBearerServer | None = None  # OAUTHBEARER's validator (given at the handshake)
    expires_ms: float | None = None  # OAUTHBEARER: the token's exp (ms since the epoch)

    def step(self, core: BrokerCore, token: bytes) -> tuple[bytes, str | None]:
        """Consume one client token: ``(server token, authenticated user or None)``."""
        if self.refusal is not None:
            raise AuthenticationFailed(self.refusal)
        user: str | None
        if self.mechanism == "PLAIN":
            reply, user = b"", self._plain(core, token)
        elif self.oauth is not None:
            reply, user = self._oauthbearer(core, self.oauth, token)
        else:
            reply, user = self._scram_step(core, token)
        if user is not None and self.reauth_of is not None and user != self.reauth_of:
            raise AuthenticationFailed(
                f"Cannot change principals during re-authentication from User:{self.reauth_of}: User:{user}"
            )
        return reply, user

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
        try:
            core.login(user, password, self.peer_host)
        except LoginRefused as exc:
            log.info("kafka SASL/PLAIN login refused: %s", exc)
            if core.authenticate(user, password):  # the password is right: say what is wrong
                raise AuthenticationFailed(f"Authentication failed: {exc}") from None
            raise _invalid_credentials(self.mechanism, self.reauth_of is not None) from None
        return user

    def _oauthbearer(
        self, core: BrokerCore, server: OAuthBearerServer, token: bytes
    ) -> tuple[bytes, str | None]:
        try:
            reply, found = server.step(token, time.time() * 1000)
        except TokenRejected as exc:
            log.info("kafka SASL/OAUTHBEARER token refused: %s", exc.reason)
            raise AuthenticationFailed(
                f"Authentication failed: {exc.challenge().decode()}: {exc.reason}"
            ) from None
        except OAuthBearerError as exc:
            raise AuthenticationFailed(str(exc)) from None
        if found is None:
            return reply, None  # the error challenge: the client answers %x01
        self.user = found.principal
        try:
            core.access.check_source(found.principal, self.peer_host)  # the loopback rule
        except LoginRefused as exc:
            raise AuthenticationFailed(f"Authentication failed: {exc}") from None
        self.expires_ms = found.expires_ms
        return reply, found.principal

    def _scram_step(self, core: BrokerCore, token: bytes) -> tuple[bytes, str | None]:
        try:
            if self.scram is None:
                self.scram = ScramServer(self.mechanism, functools.partial(self._credential, core))
                reply = self.scram.first(token)
                self.user = self.scram.username
                return reply, None
            self.user = self.scram.username
            final = self.scram.final(token)
            if self.user is not None:
                core.check_login_source(self.user, self.peer_host)
        except ScramError as exc:
            if self.scram is not None and self.scram.username is not None:
                self.user = self.scram.username
            if exc.error in (INVALID_PROOF, UNKNOWN_USER):
                raise _invalid_credentials(self.mechanism, self.reauth_of is not None) from None
            raise AuthenticationFailed(f"Authentication failed: {exc.detail}") from None
        except LoginRefused as exc:
            raise AuthenticationFailed(f"Authentication failed: {exc}") from None
        return final, self.user

    def _credential(self, core: BrokerCore, user: str) -> ScramCredential:
        found = core.access.users.get(user)
        credential = found.scram.get(self.mechanism) if found is not None else None
        return credential if credential is not None else _decoy(self.mechanism, user)


def _close_after_response(ctx: RequestContext) -> None:
    """Close the connection a little after the response being returned has been written.

    The connection writes a handler's response in the event-loop step the handler returns
    in, and a transport closes only after writing out what it buffered.  Like Kafka
    (``connection.failed.authentication.delay.ms``, 100 ms) the close is delayed: clients
    that drop data read together with the end of the stream then still see the error, and
    password guessing is slowed down.  Until then the connection accepts no SASL request
    (and, after a failed re-authentication, no other request either).
    """
    conn = ctx.connection
    conn.sasl_state = FAILED
    conn.authenticated = False  # a failed re-authentication too: nothing more is served
    asyncio.get_running_loop().call_later(FAILED_AUTH_CLOSE_DELAY, conn.close, "SASL authentication failed")


def _may_reauthenticate(conn: ConnectionState) -> bool:
    """KIP-368, as Kafka's ``maybeBeginServerReauthentication``: only a session that expires
    can be renewed, and at most once a second."""
    if conn.session_expires is None or conn.sasl_state is not None:
        return False
    return conn.reauth_started == 0.0 or time.monotonic() - conn.reauth_started >= REAUTH_MIN_INTERVAL


async def handle_sasl_handshake(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.SASL_HANDSHAKE, ctx.api_version)
    enabled = ctx.listener.sasl_mechanisms  # none on a listener without SASL
    conn = ctx.connection
    reauth_of = None
    if conn.authenticated:
        if not _may_reauthenticate(conn):
            # as Kafka: a handshake on an authenticated (or non-SASL) connection whose
            # session does not expire is out of place
            return build(
                mod.SaslHandshakeResponse, error_code=ErrorCode.illegal_sasl_state, mechanisms=enabled
            )
        reauth_of = conn.principal
        conn.reauth_started = time.monotonic()
    elif conn.sasl_state is not None:
        _close_after_response(ctx)
        return build(mod.SaslHandshakeResponse, error_code=ErrorCode.illegal_sasl_state, mechanisms=enabled)
    served = request.mechanism in enabled
    if request.mechanism == OAUTHBEARER and ctx.broker.oauthbearer is None:
        served = False  # secure by default: only with kafka_oauthbearer_unsecured (settings.py)
    if not served:
        log.info(
            "kafka SASL mechanism not enabled",
            extra={"client": conn.client_host, "mechanism": request.mechanism},
        )
        _close_after_response(ctx)
        return build(
            mod.SaslHandshakeResponse, error_code=ErrorCode.unsupported_sasl_mechanism, mechanisms=enabled
        )
    state = SaslExchange(request.mechanism, conn.client_host, reauth_of=reauth_of)
    if request.mechanism == OAUTHBEARER and ctx.broker.oauthbearer is not None:
        state.oauth = OAuthBearerServer(ctx.broker.oauthbearer)
    if reauth_of is not None and request.mechanism != conn.auth_mechanism:
        # as Kafka: the handshake succeeds, the exchange that follows fails with this message
        state.refusal = (
            f"SASL mechanism '{request.mechanism}' requested by client is not supported for "
            f"re-authentication of mechanism '{conn.auth_mechanism}'"
        )
    conn.sasl_state = state
    conn.sasl_raw = ctx.api_version == 0  # v0: the tokens follow as bare frames
    return build(mod.SaslHandshakeResponse, error_code=ErrorCode.none, mechanisms=enabled)


def raw_token(broker: KafkaBroker, conn: ConnectionState, token: bytes) -> bytes | None:
    """After SaslHandshake v0: consume one bare client token; the bare server token to send
    back (empty for PLAIN, which Kafka sends too), or None when authentication failed."""
    state = conn.sasl_state
    if not isinstance(state, SaslExchange):
        return None
    try:
        reply, user = state.step(broker.core, token)
    except AuthenticationFailed:
        _log_failure(conn, state)
        conn.sasl_state = FAILED
        conn.sasl_raw = False
        conn.authenticated = False
        return None
    if user is not None:
        _authenticated(broker, conn, state, user)
    return reply


def _log_failure(conn: ConnectionState, state: SaslExchange) -> None:
    what = "re-authentication" if state.reauth_of is not None else "authentication"
    log.info(
        f"kafka SASL {what} failed",
        extra={"client": conn.client_host, "mechanism": state.mechanism, "user": state.user},
    )


def _authenticated(broker: KafkaBroker, conn: ConnectionState, state: SaslExchange, user: str) -> int:
    """Mark the connection authenticated; the session lifetime (ms) to tell the client."""
    conn.sasl_state = None
    conn.sasl_raw = False
    conn.authenticated = True
    conn.principal = user
    conn.auth_mechanism = state.mechanism
    lifetime = max(broker.connections_max_reauth_ms, 0)
    if state.expires_ms is not None:  # as Kafka: the credential's expiry bounds the session
        left = min(max(int(state.expires_ms - time.time() * 1000), 1), MAX_SESSION_MS)
        lifetime = min(lifetime, left) if lifetime else left
    conn.session_expires = time.monotonic() + lifetime / 1000 if lifetime else None
    if state.reauth_of is not None:
        conn.reauthentications += 1
        log.info(
            "kafka SASL re-authentication",
            extra={"client": conn.client_host, "mechanism": state.mechanism, "user": user},
        )
    return lifetime


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

    if conn.authenticated and not (isinstance(state, SaslExchange) and state.reauth_of is not None):
        return failed(ErrorCode.illegal_sasl_state, "the connection is already authenticated")
    if not isinstance(state, SaslExchange):
        _close_after_response(ctx)
        return failed(ErrorCode.illegal_sasl_state, "SaslAuthenticate before SaslHandshake")
    try:
        token, user = state.step(ctx.broker.core, request.auth_bytes)
    except AuthenticationFailed as exc:
        _log_failure(conn, state)
        _close_after_response(ctx)
        return failed(ErrorCode.sasl_authentication_failed, str(exc))
    lifetime = 0
    if user is not None:
        lifetime = _authenticated(ctx.broker, conn, state, user)
    return build(
        mod.SaslAuthenticateResponse,
        error_code=ErrorCode.none,
        error_message=None,
        auth_bytes=token,
        session_lifetime=lifetime,  # KIP-368 (v1+): re-authenticate within it
    )


APIS = [
    Api(ApiKey.SASL_HANDSHAKE, 0, 1, handle_sasl_handshake, before_auth=True),
    Api(ApiKey.SASL_AUTHENTICATE, 0, 2, handle_sasl_authenticate, before_auth=True),
]
