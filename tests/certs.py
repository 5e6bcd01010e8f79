"""Certificates made at test time (with ``trustme``) for the TLS tests of every front-end: a CA,
a server certificate for 127.0.0.1 and localhost, and client certificates by CN, each written to
PEM files the broker's settings name."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class KeyPair:
    certfile: Path
    keyfile: Path


class TestCA:
    """A certificate authority whose files live in ``directory``."""

    __test__ = False  # not a test class, whatever pytest thinks of its name

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ca = trustme.CA()
        self.cafile = directory / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.cafile))
        self._issued = 0

    def _write(self, leaf: trustme.LeafCert, label: str) -> KeyPair:
        self._issued += 1
        pair = KeyPair(
            self.directory / f"{label}-{self._issued}-cert.pem",
            self.directory / f"{label}-{self._issued}-key.pem",
        )
        for i, pem in enumerate(leaf.cert_chain_pems):
            pem.write_to_path(str(pair.certfile), append=i > 0)
        leaf.private_key_pem.write_to_path(str(pair.keyfile))
        return pair

    def server(self) -> KeyPair:
        """A server certificate for 127.0.0.1 and localhost."""
        return self._write(self.ca.issue_cert("127.0.0.1", "localhost", common_name="localhost"), "server")

    def client(self, common_name: str) -> KeyPair:
        """A client certificate whose subject's CN is ``common_name``."""
        return self._write(self.ca.issue_cert(common_name=common_name), "client")

    def client_context(self, client: KeyPair | None = None) -> ssl.SSLContext:
        """A client's context that trusts this CA (and checks the server's name), presenting
        ``client``'s certificate if given."""
        context = ssl.create_default_context(cafile=str(self.cafile))
        if client is not None:
            context.load_cert_chain(client.certfile, client.keyfile)
        return context
