"""Kafka listener specifications, as Kafka's ``listeners``, ``advertised.listeners`` and
``listener.security.protocol.map`` write them (sans-IO: parsing and checking only).

A listener is ``NAME://host:port``.  Its name is one of the four security protocols
(PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL), or any other name the protocol map gives a
protocol (``INTERNAL:PLAINTEXT,EXTERNAL:SASL_SSL``).  An empty host binds the broker's
``host`` setting; port 0 picks a free port.  :func:`anonymous_allowed` is the rule for clients
without SASL (``kafka_anonymous``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

PROTOCOLS: Final = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
ANONYMOUS_POLICIES: Final = ("loopback", "any", "never")

_NAME = re.compile(r"[A-Za-z0-9_]+")
# NAME://host:port with an IPv6 host in brackets; the host may be empty (the default host)
_LISTENER = re.compile(
    r"(?P<name>[^:/]*)://(?:\[(?P<v6>[0-9A-Fa-f:.%]*)\]|(?P<host>[^:\[\]/]*)):(?P<port>-?\d+)"
)


class ListenerError(ValueError):
    """A listener list or protocol map Kafka would not accept either."""


@dataclass(frozen=True)
class ListenerSpec:
    """One listener as configured: the address to bind and the one clients are told."""

    name: str
    protocol: str  # one of PROTOCOLS
    host: str  # to bind; empty: the broker's host setting
    port: int  # 0: a free port
    advertised_host: str = ""  # empty: derived from the bound address
    advertised_port: int = 0  # 0: the bound port

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL_")


def parse_protocol_map(text: str) -> dict[str, str]:
    """``NAME:PROTOCOL,...``, on top of the default map (each protocol names itself)."""
    mapping = {p: p for p in PROTOCOLS}
    for item in _items(text):
        name, sep, protocol = item.partition(":")
        name, protocol = name.strip().upper(), protocol.strip().upper()
        if not sep or not _NAME.fullmatch(name):
            raise ListenerError(f"listener security protocol map entry {item!r} is not NAME:PROTOCOL")
        if protocol not in PROTOCOLS:
            raise ListenerError(
                f"unknown security protocol {protocol!r} for listener {name}; known: {', '.join(PROTOCOLS)}"
            )
        mapping[name] = protocol
    return mapping


def parse_addresses(text: str, what: str) -> dict[str, tuple[str, int]]:
    """``NAME://host:port,...`` as {NAME: (host, port)}, names unique (upper case)."""
    out: dict[str, tuple[str, int]] = {}
    for item in _items(text):
        m = _LISTENER.fullmatch(item)
        if m is None:
            raise ListenerError(f"{what} entry {item!r} is not NAME://host:port")
        name = m["name"].strip().upper()
        if not _NAME.fullmatch(name):
            raise ListenerError(f"{what} entry {item!r}: the listener name must be letters, digits or _")
        port = int(m["port"])
        if not 0 <= port <= 65535:
            raise ListenerError(f"{what} entry {item!r}: {port} is not a port number")
        if name in out:
            raise ListenerError(f"{what} names listener {name} twice")
        out[name] = (m["v6"] if m["v6"] is not None else m["host"], port)
    return out


def parse_listeners(listeners: str, advertised: str = "", protocol_map: str = "") -> tuple[ListenerSpec, ...]:
    """The listeners of Kafka's ``listeners`` / ``advertised.listeners`` /
    ``listener.security.protocol.map`` values, in the order given."""
    mapping = parse_protocol_map(protocol_map)
    bound = parse_addresses(listeners, "listener")
    if not bound:
        raise ListenerError("no listener given")
    told = parse_addresses(advertised, "advertised listener")
    specs = []
    seen: dict[tuple[str, int], str] = {}
    for name, (host, port) in bound.items():
        protocol = mapping.get(name)
        if protocol is None:
            raise ListenerError(
                f"listener {name} is not a security protocol ({', '.join(PROTOCOLS)}) and the "
                "listener security protocol map gives it none"
            )
        if port and (host, port) in seen:
            raise ListenerError(f"listeners {seen[host, port]} and {name} both bind {host}:{port}")
        seen[host, port] = name
        advertised_host, advertised_port = told.pop(name, ("", 0))
        if advertised_host in ("0.0.0.0", "::"):
            raise ListenerError(
                f"advertised listener {name}: {advertised_host} is not an address to connect to"
            )
        specs.append(ListenerSpec(name, protocol, host, port, advertised_host, advertised_port))
    if told:
        raise ListenerError(f"advertised listener {', '.join(sorted(told))} is not a listener")
    return tuple(specs)


def format_listeners(entries: list[tuple[str, str, int]]) -> str:
    """``NAME://host:port,...`` (IPv6 hosts in brackets), as Kafka shows listeners."""
    return ",".join(f"{name}://{_host(host)}:{port}" for name, host, port in entries)


def format_protocol_map(mapping: Mapping[str, str]) -> str:
    return ",".join(f"{name}:{protocol}" for name, protocol in mapping.items())


def anonymous_allowed(policy: str, loopback: bool) -> bool:
    """Whether a client without SASL (``User:ANONYMOUS``) may use the broker: ``any``, only
    from a loopback address (``loopback``, RabbitMQ's rule for guest), or ``never``."""
    if policy == "any":
        return True
    if policy == "loopback":
        return loopback
    return False


def _items(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
