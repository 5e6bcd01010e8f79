"""The server side of SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), sans I/O.

:class:`ScramServer` consumes the client's two messages and returns the server's two; it
reads nothing and writes nothing itself.  It checks what Kafka's ``ScramSaslServer`` checks,
and what RFC 5802 asks of a server besides:

* the messages' syntax, attribute by attribute (``invalid-encoding``; a user name with a bad
  ``=2C``/``=3D`` escape: ``invalid-username-encoding``);
* channel binding: none is offered, so the flag must be ``n`` or ``y`` and the final
  message's ``c=`` must repeat the GS2 header (``channel-binding-not-supported``,
  ``channel-bindings-dont-match``);
* extensions: a mandatory one (``m=``) is refused (``extensions-not-supported``), as is
  Kafka's ``tokenauth=true``, since the broker has no delegation tokens; other extensions are
  ignored, as Kafka ignores them;
* an authorisation id other than the user name is refused, as Kafka refuses it;
* the final nonce must be the client's nonce followed by the server's;
* the credential's iteration count must be at least 4096 (Kafka's ``ScramMechanism``);
* the proof, compared in constant time (``invalid-proof``).

Any salt works: the salt is the credential's (set by a password or by
AlterUserScramCredentials), never checked for a length.  Passwords are not seen here: the
credential holds the stored key and the server key only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from jackalope.core.passwords import SCRAM_MECHANISMS, ScramCredential

MIN_ITERATIONS: Final = 4096  # Kafka's ScramMechanism.minIterations, for both mechanisms
TOKEN_AUTH: Final = "tokenauth"  # Kafka's delegation-token extension

# RFC 5802 section 7's server-error values
INVALID_ENCODING: Final = "invalid-encoding"
EXTENSIONS_NOT_SUPPORTED: Final = "extensions-not-supported"
INVALID_PROOF: Final = "invalid-proof"
CHANNEL_BINDINGS_DONT_MATCH: Final = "channel-bindings-dont-match"
CHANNEL_BINDING_NOT_SUPPORTED: Final = "channel-binding-not-supported"
UNKNOWN_USER: Final = "unknown-user"
INVALID_USERNAME_ENCODING: Final = "invalid-username-encoding"
OTHER_ERROR: Final = "other-error"

CredentialLookup = Callable[[str], ScramCredential | None]


class ScramError(Exception):
    """A refused exchange: ``error`` is RFC 5802's server-error value, ``detail`` says why."""

    def __init__(self, error: str, detail: str) -> None:
        super().__init__(detail)
        self.error = error
        self.detail = detail


@dataclass(frozen=True)
class ClientFirst:
    gs2_header: str  # "n,," or "n,a=<authzid>," (what the final c= must repeat)
    authzid: str  # "" when none was given
    username: str  # unescaped
    nonce: str
    extensions: dict[str, str] = field(default_factory=dict)
    bare: str = ""  # client-first-message-bare, part of the AuthMessage


@dataclass(frozen=True)
class ClientFinal:
    channel_binding: bytes
    nonce: str
    proof: bytes
    without_proof: str  # client-final-message-without-proof, part of the AuthMessage


def _printable(text: str) -> bool:
    """RFC 5802's ``printable``: %x21-2B / %x2D-7E (no comma)."""
    return bool(text) and all(0x21 <= ord(c) <= 0x7E and c != "," for c in text)


def _saslname(text: str) -> str:
    """Undo RFC 5802's escaping of a ``saslname`` ("=2C" is ",", "=3D" is "=")."""
    if not text:
        raise ScramError(INVALID_ENCODING, "empty user name")
    if "," in text or "\0" in text:
        raise ScramError(INVALID_ENCODING, "invalid character in a user name")
    out = []
    i = 0
    while i < len(text):
        if text[i] == "=":
            escape = text[i : i + 3]
            if escape == "=2C":
                out.append(",")
            elif escape == "=3D":
                out.append("=")
            else:
                raise ScramError(INVALID_USERNAME_ENCODING, "invalid escape in a user name")
            i += 3
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _attribute(part: str, name: str) -> str:
    if not part.startswith(name + "="):
        raise ScramError(INVALID_ENCODING, f"expected the attribute {name!r}")
    return part[len(name) + 1 :]


def _extensions(parts: list[str]) -> dict[str, str]:
    """``attr-val *("," attr-val)`` with ``attr-val = ALPHA "=" value``; Kafka's extension
    names are words, so any ASCII letters are taken as the name."""
    found: dict[str, str] = {}
    for part in parts:
        key, sep, value = part.partition("=")
        if not sep or not key or not (key.isascii() and key.isalpha()) or not value or "\0" in value:
            raise ScramError(INVALID_ENCODING, "invalid extension")
        found[key] = value
    return found


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise ScramError(INVALID_ENCODING, f"{what} is not base64") from None


def parse_client_first(message: str) -> ClientFirst:
    """``gs2-header client-first-message-bare`` (RFC 5802 section 7)."""
    flag, sep1, rest = message.partition(",")
    authz, sep2, bare = rest.partition(",")
    if not sep1 or not sep2:
        raise ScramError(INVALID_ENCODING, "malformed client-first-message")
    if flag.startswith("p="):
        raise ScramError(CHANNEL_BINDING_NOT_SUPPORTED, "channel binding is not supported")
    if flag not in ("n", "y"):
        raise ScramError(INVALID_ENCODING, "invalid GS2 channel-binding flag")
    authzid = _saslname(_attribute(authz, "a")) if authz else ""
    parts = bare.split(",")
    if parts[0].startswith("m="):
        raise ScramError(EXTENSIONS_NOT_SUPPORTED, "mandatory extensions are not supported")
    if len(parts) < 2:
        raise ScramError(INVALID_ENCODING, "malformed client-first-message")
    username = _saslname(_attribute(parts[0], "n"))
    nonce = _attribute(parts[1], "r")
    if not _printable(nonce):
        raise ScramError(INVALID_ENCODING, "invalid client nonce")
    return ClientFirst(
        gs2_header=f"{flag},{authz},",
        authzid=authzid,
        username=username,
        nonce=nonce,
        extensions=_extensions(parts[2:]),
        bare=bare,
    )


def parse_client_final(message: str) -> ClientFinal:
    """``channel-binding "," nonce ["," extensions] "," proof`` (RFC 5802 section 7)."""
    without_proof, sep, proof = message.rpartition(",")
    parts = without_proof.split(",")
    if not sep or len(parts) < 2:
        raise ScramError(INVALID_ENCODING, "malformed client-final-message")
    channel_binding = _b64(_attribute(parts[0], "c"), "the channel binding")
    nonce = _attribute(parts[1], "r")
    if not _printable(nonce):
        raise ScramError(INVALID_ENCODING, "invalid nonce")
    _extensions(parts[2:])
    return ClientFinal(
        channel_binding=channel_binding,
        nonce=nonce,
        proof=_b64(_attribute(proof, "p"), "the proof"),
        without_proof=without_proof,
    )


def _server_nonce() -> str:
    return secrets.token_urlsafe(24)  # letters, digits, "-" and "_": all printable


class ScramServer:
    """One SCRAM exchange: :meth:`first` then :meth:`final`, each at most once.

    ``lookup`` gives a user's credential for the mechanism, or None (``unknown-user``; the
    caller may answer a decoy credential instead, so that the exchange fails at the proof).
    """

    def __init__(
        self, mechanism: str, lookup: CredentialLookup, nonce: Callable[[], str] = _server_nonce
    ) -> None:
        if mechanism not in SCRAM_MECHANISMS:
            raise ValueError(f"unknown SCRAM mechanism {mechanism!r}")
        self.mechanism = mechanism
        self._hash = SCRAM_MECHANISMS[mechanism]
        self._lookup = lookup
        self._make_nonce = nonce
        self._client_first: ClientFirst | None = None
        self._server_first = ""
        self._credential: ScramCredential | None = None
        self.username: str | None = None  # once the client-first message named one
        self.complete = False

    def first(self, message: bytes) -> bytes:
        """The client-first message; the server-first message."""
        if self._client_first is not None:
            raise ScramError(OTHER_ERROR, "unexpected client-first-message")
        client = parse_client_first(_text(message))
        self.username = client.username
        if client.extensions.get(TOKEN_AUTH, "").lower() == "true":  # Kafka's parseBoolean
            raise ScramError(EXTENSIONS_NOT_SUPPORTED, "delegation tokens (tokenauth) are not supported")
        if client.authzid and client.authzid != client.username:
            raise ScramError(
                OTHER_ERROR, "Client requested an authorization id that is different from username"
            )
        credential = self._lookup(client.username)
        if credential is None:
            raise ScramError(UNKNOWN_USER, "unknown user")
        if credential.iterations < MIN_ITERATIONS:
            raise ScramError(
                OTHER_ERROR,
                f"Iterations {credential.iterations} is less than the minimum {MIN_ITERATIONS} "
                f"for {self.mechanism}",
            )
        server_nonce = self._make_nonce()
        if not _printable(server_nonce):
            raise ValueError("the server nonce must be printable and without commas")
        salt = base64.b64encode(credential.salt).decode()
        self._server_first = f"r={client.nonce}{server_nonce},s={salt},i={credential.iterations}"
        self._client_first = client
        self._credential = credential
        return self._server_first.encode()

    def final(self, message: bytes) -> bytes:
        """The client-final message; the server-final message (the server's signature)."""
        client, credential = self._client_first, self._credential
        if client is None or credential is None or self.complete:
            raise ScramError(OTHER_ERROR, "unexpected client-final-message")
        self._credential = None  # one attempt only
        final = parse_client_final(_text(message))
        if final.channel_binding != client.gs2_header.encode():
            raise ScramError(CHANNEL_BINDINGS_DONT_MATCH, "the channel binding does not match")
        expected_nonce = self._server_first[2 : self._server_first.index(",")]
        if not hmac.compare_digest(final.nonce.encode(), expected_nonce.encode()):
            raise ScramError(OTHER_ERROR, "Invalid client nonce in the final client message.")
        auth_message = f"{client.bare},{self._server_first},{final.without_proof}".encode()
        signature = hmac.new(credential.stored_key, auth_message, self._hash).digest()
        if len(final.proof) != len(signature):
            raise ScramError(INVALID_PROOF, "invalid proof")
        client_key = bytes(a ^ b for a, b in zip(final.proof, signature, strict=True))
        if not hmac.compare_digest(hashlib.new(self._hash, client_key).digest(), credential.stored_key):
            raise ScramError(INVALID_PROOF, "invalid proof")
        server_signature = hmac.new(credential.server_key, auth_message, self._hash).digest()
        self.complete = True
        return b"v=" + base64.b64encode(server_signature)


def _text(message: bytes) -> str:
    try:
        return message.decode("utf-8")
    except UnicodeDecodeError:
        raise ScramError(INVALID_ENCODING, "the message is not UTF-8") from None
