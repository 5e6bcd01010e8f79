"""The server side of SASL/OAUTHBEARER (RFC 7628, KIP-255) with Kafka's unsecured validator, sans I/O.

FOR DEVELOPMENT AND TESTING ONLY, as Kafka's ``OAuthBearerUnsecuredValidatorCallbackHandler``
is: the token is an unsecured JWS (RFC 7515 with ``"alg":"none"`` and no signature), so any
client can claim any principal.  The broker serves the mechanism only when both
``kafka_sasl_mechanisms`` names it and ``kafka_oauthbearer_unsecured`` is true.

The client's initial response is the GS2 header ``n,[a=<authzid>],`` then ``\\x01``-separated
``key=value`` pairs, of which ``auth=Bearer <token>`` is required and the others are
extensions (accepted, as Kafka's unsecured validator accepts them), closed by ``\\x01\\x01``.

The token is checked as Kafka checks it: three base64url parts, the last empty; a JSON object
header whose ``alg`` is ``none``; a JSON object claim set with the principal claim (``sub``
unless configured) a non-blank string, ``exp`` a number after now (less the allowed clock
skew), ``iat``, if present, a number not after now (plus the skew), ``exp`` after ``iat``, and
the scope claim (``scope``: a string of space-separated values or a list of strings) holding
every required scope value.

A token that fails is answered, as RFC 7628 section 3.2.2 says, with the server's JSON error
(``{"status":"invalid_token"}``, or ``insufficient_scope`` with the required scope) as a
challenge; the client then sends ``\\x01`` and the exchange fails.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any, Final

MECHANISM: Final = "OAUTHBEARER"
SEPARATOR: Final = "\x01"
AUTH_KEY: Final = "auth"
INVALID_TOKEN: Final = "invalid_token"
INSUFFICIENT_SCOPE: Final = "insufficient_scope"

# Kafka's OAuthBearerClientInitialResponse grammar (RFC 7628 section 3.1)
_SASLNAME: Final = r"(?:[\x01-\x2B\x2D-\x3C\x3E-\x7F]|=2C|=3D)+"
_KEY: Final = r"[A-Za-z]+"
_VALUE: Final = r"[\x21-\x7E \t\r\n]+"
_INITIAL_RESPONSE: Final = re.compile(
    rf"n,(?:a=(?P<authzid>{_SASLNAME}))?,\x01(?P<pairs>(?:{_KEY}={_VALUE}\x01)*)\x01", re.DOTALL
)
_PAIR: Final = re.compile(rf"(?P<key>{_KEY})=(?P<value>{_VALUE})\x01")
_AUTH: Final = re.compile(r"(?P<scheme>\w+) +(?P<token>[-_~+/.a-zA-Z0-9]+=*)", re.ASCII)


class OAuthBearerError(Exception):
    """A malformed initial response: the exchange fails at once (no challenge)."""


class TokenRejected(Exception):
    """A token the validator refuses: told to the client as RFC 7628's JSON error."""

    def __init__(self, reason: str, status: str = INVALID_TOKEN, scope: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.scope = scope

    def challenge(self) -> bytes:
        """The server's error message (RFC 7628 section 3.2.2), as Kafka writes it."""
        error: dict[str, str] = {"status": self.status}
        if self.scope is not None:
            error["scope"] = self.scope
        return json.dumps(error, separators=(",", ":")).encode()


@dataclass(frozen=True)
class InitialResponse:
    token: str
    authzid: str = ""  # "" when none was given
    extensions: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ValidatorConfig:
    """Kafka's ``unsecuredValidator*`` options."""

    principal_claim: str = "sub"
    scope_claim: str = "scope"
    required_scope: tuple[str, ...] = ()
    allowable_clock_skew_ms: int = 0


@dataclass(frozen=True)
class Token:
    principal: str
    expires_ms: float  # exp, in ms since the epoch
    scope: frozenset[str]
    claims: dict[str, Any]


def parse_initial_response(data: bytes) -> InitialResponse:
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise OAuthBearerError("Invalid OAUTHBEARER client first message: not UTF-8") from None
    match = _INITIAL_RESPONSE.fullmatch(text)
    if match is None:
        raise OAuthBearerError("Invalid OAUTHBEARER client first message")
    pairs = {m["key"]: m["value"] for m in _PAIR.finditer(match["pairs"])}
    auth = pairs.pop(AUTH_KEY, None)
    if auth is None:
        raise OAuthBearerError("Invalid OAUTHBEARER client first message: 'auth' not specified")
    auth_match = _AUTH.fullmatch(auth)
    if auth_match is None:
        raise OAuthBearerError("Invalid OAUTHBEARER client first message: invalid 'auth' format")
    if auth_match["scheme"].lower() != "bearer":
        raise OAuthBearerError(f"Invalid scheme in OAUTHBEARER client first message: {auth_match['scheme']}")
    authzid = (match["authzid"] or "").replace("=2C", ",").replace("=3D", "=")
    return InitialResponse(auth_match["token"], authzid, pairs)


def _json_part(part: str, what: str) -> dict[str, Any]:
    try:
        decoded = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        value = json.loads(decoded)
    except (binascii.Error, ValueError):
        raise TokenRejected(f"Unsecured JWS {what} is not base64url-encoded JSON") from None
    if not isinstance(value, dict):
        raise TokenRejected(f"Unsecured JWS {what} is not a JSON object")
    return value


def _number(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenRejected(f"The claim '{name}' is not a number")
    number = float(value)
    if not math.isfinite(number):  # JSON's NaN and Infinity, which Python reads
        raise TokenRejected(f"The claim '{name}' is not a finite number")
    return number


def _scope(claims: dict[str, Any], name: str) -> frozenset[str]:
    value = claims.get(name)
    if value is None:
        return frozenset()
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return frozenset(v.strip() for v in value if v.strip())
    raise TokenRejected(f"The claim '{name}' is neither a string nor a list of strings")


def validate(token: str, config: ValidatorConfig, now_ms: float) -> Token:
    """The token's principal and lifetime, or :class:`TokenRejected` saying why not."""
    if ".." in token:
        raise TokenRejected("Malformed compact serialization contains '..'")
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenRejected("Unsecured JWS compact serialization must have 3 parts")
    header = _json_part(parts[0], "header")
    claims = _json_part(parts[1], "claim set")
    if header.get("alg") != "none":
        raise TokenRejected("Unsecured JWS must have 'none' for an algorithm")
    if parts[2]:
        raise TokenRejected("Unsecured JWS must not contain a digital signature")
    principal = claims.get(config.principal_claim)
    if principal is None:
        raise TokenRejected(f"Required claim missing: {config.principal_claim}")
    if not isinstance(principal, str) or not principal.strip():
        raise TokenRejected(f"No principal name in JWT claim: {config.principal_claim}")
    skew = config.allowable_clock_skew_ms
    issued = _number(claims, "iat")
    expires = _number(claims, "exp")
    if expires is None:
        raise TokenRejected("No expiration time in JWT")
    if issued is not None and issued * 1000 > now_ms + skew:
        raise TokenRejected("The Issued At value is after the current time plus the allowable clock skew")
    if now_ms - skew >= expires * 1000:
        raise TokenRejected("The token has expired (exp, less the allowable clock skew, has passed)")
    if issued is not None and expires <= issued:
        raise TokenRejected("The Expiration Time is not after the Issued At time")
    scope = _scope(claims, config.scope_claim)
    missing = [s for s in config.required_scope if s not in scope]
    if missing:
        raise TokenRejected(
            f"The provided scope {sorted(scope)} is missing a required scope ({missing[0]})",
            INSUFFICIENT_SCOPE,
            " ".join(config.required_scope),
        )
    return Token(principal, expires * 1000, scope, claims)


def unsecured_token(
    principal: str,
    *,
    lifetime_s: float = 3600.0,
    issued_at: float | None = None,
    claims: dict[str, Any] | None = None,
    alg: str = "none",
) -> str:
    """An unsecured JWS as Kafka's ``OAuthBearerUnsecuredLoginCallbackHandler`` makes one (for
    tests and tools); ``issued_at`` in seconds since the epoch (default: now)."""
    iat = time.time() if issued_at is None else issued_at
    body: dict[str, Any] = {"sub": principal, "iat": iat, "exp": iat + lifetime_s}
    body.update(claims or {})

    def encode(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{encode({'alg': alg})}.{encode(body)}."


def initial_response(token: str, authzid: str = "", extensions: dict[str, str] | None = None) -> bytes:
    """The client's initial response carrying ``token`` (for tests and tools)."""
    gs2 = f"n,a={authzid.replace('=', '=3D').replace(',', '=2C')}," if authzid else "n,,"
    pairs = "".join(f"{k}={v}{SEPARATOR}" for k, v in (extensions or {}).items())
    return f"{gs2}{SEPARATOR}{AUTH_KEY}=Bearer {token}{SEPARATOR}{pairs}{SEPARATOR}".encode()


@dataclass
class OAuthBearerServer:
    """One exchange: :meth:`step` takes each client message and returns ``(server message,
    token or None)``; a token means the client is authenticated."""

    config: ValidatorConfig
    failure: TokenRejected | None = None  # the challenge sent, awaiting the client's %x01
    authzid: str = ""
    extensions: dict[str, str] = field(default_factory=dict)

    def step(self, data: bytes, now_ms: float) -> tuple[bytes, Token | None]:
        """OAuthBearerError or TokenRejected (after its challenge) when authentication fails."""
        if self.failure is not None:
            if data != SEPARATOR.encode():
                raise OAuthBearerError("Invalid OAUTHBEARER client response: expected %x01 after the error")
            raise self.failure
        initial = parse_initial_response(data)
        self.authzid, self.extensions = initial.authzid, initial.extensions
        try:
            token = validate(initial.token, self.config, now_ms)
        except TokenRejected as exc:
            self.failure = exc
            return exc.challenge(), None
        if initial.authzid and initial.authzid != token.principal:
            raise OAuthBearerError(
                f"Authentication failed: Client requested an authorization id ({initial.authzid}) that is "
                f"different from the token's principal name ({token.principal})"
            )
        return b"", token
