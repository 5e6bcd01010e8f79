"""Jackalope inside a Python process: for test fixtures, scripts and applications.

::

    with Broker() as broker:            # its own thread and event loop
        requests.get(broker.http_url + "/api/health")

    async with Broker() as broker:      # on the caller's running loop
        ...

Listeners bind ephemeral ports on 127.0.0.1 unless told otherwise; without a ``data_dir`` the
broker uses a temporary directory and removes it on stop.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from jackalope import eventloop
from jackalope.server import Server
from jackalope.settings import Settings


class Broker:
    def __init__(self, data_dir: str | Path | None = None, **overrides: Any) -> None:
        self._tempdir: Path | None = None
        if data_dir is None:
            self._tempdir = Path(tempfile.mkdtemp(prefix="jackalope-"))
            data_dir = self._tempdir
        overrides.setdefault("http_port", 0)
        overrides.setdefault("amqp_port", 0)
        overrides.setdefault("amqp_tls_port", 0)  # listening only with amqp_tls_certfile
        if not overrides.get("kafka_listeners"):
            overrides.setdefault("kafka_port", 0)  # kafka_listeners gives its own ports
        self.settings = Settings(data_dir=Path(data_dir), **overrides)
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- state ---------------------------------------------------------------------------------

    @property
    def server(self) -> Server:
        if self._server is None:
            raise RuntimeError("the broker is not running")
        return self._server

    @property
    def addresses(self) -> dict[str, str]:
        return dict(self.server.addresses)

    @property
    def http_url(self) -> str:
        return self.server.addresses["http"]

    @property
    def amqp_url(self) -> str:
        """``amqp://user:pass@host:port/`` for AMQP clients."""
        s = self.settings
        hostport = self.server.addresses["amqp"].split("://", 1)[1]
        return f"amqp://{s.default_user}:{s.default_pass}@{hostport}/"

    @property
    def amqps_url(self) -> str:
        """``amqps://user:pass@host:port/`` for AMQP clients over TLS (with ``amqp_tls_certfile``)."""
        if "amqps" not in self.server.addresses:
            raise RuntimeError("the broker has no amqps listener: amqp_tls_certfile is not set")
        s = self.settings
        hostport = self.server.addresses["amqps"].split("://", 1)[1]
        return f"amqps://{s.default_user}:{s.default_pass}@{hostport}/"

    @property
    def kafka_bootstrap(self) -> str:
        """``host:port`` for Kafka clients' ``bootstrap.servers``."""
        return self.server.addresses["kafka"].split("://", 1)[1]

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir

    # -- on the caller's event loop ------------------------------------------------------------

    async def astart(self) -> Self:
        server = Server(self.settings)
        await server.start()
        self._server = server
        return self

    async def astop(self) -> None:
        if self._server is not None:
            await self._server.stop()
            self._server = None
        self._remove_tempdir()

    async def __aenter__(self) -> Self:
        return await self.astart()

    async def __aexit__(self, *exc: object) -> None:
        await self.astop()

    # -- in a thread of its own ----------------------------------------------------------------

    def start(self) -> Self:
        """Start on a new thread with its own event loop; return once listening (or raise)."""
        if self._thread is not None:
            raise RuntimeError("the broker is already running")
        started = threading.Event()
        failure: list[BaseException] = []
        loop = eventloop.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.astart())
            except BaseException as exc:
                failure.append(exc)
                started.set()
                loop.close()
                return
            started.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="jackalope-broker", daemon=True)
        self._thread.start()
        started.wait()
        if failure:
            self._thread.join()
            self._thread = None
            self._loop = None
            self._remove_tempdir()
            raise failure[0]
        return self

    def stop(self) -> None:
        """Stop cleanly (flush, fsync, close) and join the thread."""
        if self._thread is None or self._loop is None:
            return
        future = asyncio.run_coroutine_threadsafe(self.astop(), self._loop)
        try:
            future.result()
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._thread = None
            self._loop = None

    def call(self, coro: Any) -> Any:
        """Run a coroutine on the broker's loop from another thread and return its result."""
        if self._loop is None:
            raise RuntimeError("call() needs a broker started with start()")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _remove_tempdir(self) -> None:
        if self._tempdir is not None:
            shutil.rmtree(self._tempdir, ignore_errors=True)
            self._tempdir = None
