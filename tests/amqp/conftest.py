"""Fixtures for the AMQP 0-9-1 integration tests.

The same tests run against two brokers:

* Jackalope (default): each test gets an embedded broker on ephemeral ports, with a data
  directory under its ``tmp_path``.
* Any AMQP 0-9-1 broker named by ``JACKALOPE_TEST_AMQP_URL``, e.g. a real RabbitMQ, which is
  the oracle these tests were validated against::

      JACKALOPE_TEST_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/ pytest tests/amqp

Because that broker may be shared, every test names its queues and exchanges with a unique
suffix (the ``names`` fixture), and they are deleted afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from tests.amqp.support import EXTERNAL_URL, WAIT, Names, bounded, connect, start_serve_amqp
from tests.conftest import ServeProcess

HERE = Path(__file__).resolve().parent
TEST_TIMEOUT = 30  # seconds per test: a broker that stops answering fails the test, never hangs it


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # pika's BlockingConnection has no timeout on its RPCs: bound every test of this directory.
    for item in items:
        if item.path.is_relative_to(HERE) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(TEST_TIMEOUT))


@pytest.fixture
def amqp_url(tmp_path: Path) -> Iterator[str]:
    """The URL of a running broker: ``JACKALOPE_TEST_AMQP_URL``, or else an embedded Jackalope
    on its own thread."""
    if EXTERNAL_URL is not None:
        yield EXTERNAL_URL
        return
    from jackalope import Broker

    broker = Broker(tmp_path / "data")
    broker.start()
    try:
        yield broker.amqp_url
    finally:
        bounded(broker.stop, "stopping the embedded broker", 2 * WAIT)


@pytest.fixture
async def amqp_url_on_loop(tmp_path: Path) -> AsyncIterator[str]:
    """Like ``amqp_url``, but an embedded Jackalope runs on the test's own event loop."""
    if EXTERNAL_URL is not None:
        yield EXTERNAL_URL
        return
    from jackalope import Broker

    broker = await Broker(tmp_path / "data").astart()
    try:
        yield broker.amqp_url
    finally:
        await asyncio.wait_for(broker.astop(), 2 * WAIT)


@pytest.fixture
def names(amqp_url: str) -> Iterator[Names]:
    """Unique queue/exchange names for this test, deleted from the broker afterwards."""
    n = Names()
    yield n
    n.cleanup(amqp_url)


@pytest.fixture
def connect_to(amqp_url: str, names: Names) -> Iterator[Callable[..., BlockingConnection]]:
    """Open pika blocking connections to the broker; all are closed after the test (before the
    ``names`` cleanup, so that exclusive queues are already gone by then)."""
    opened: list[BlockingConnection] = []

    def factory(**overrides: object) -> BlockingConnection:
        conn = connect(amqp_url, **overrides)
        opened.append(conn)
        return conn

    yield factory
    for conn in opened:
        if conn.is_open:
            with contextlib.suppress(Exception):
                bounded(conn.close, "closing a connection")


@pytest.fixture
def connection(connect_to: Callable[..., BlockingConnection]) -> BlockingConnection:
    return connect_to()


@pytest.fixture
def channel(connection: BlockingConnection) -> BlockingChannel:
    return connection.channel()


@pytest.fixture
def serve_amqp(tmp_path: Path) -> Iterator[Callable[..., ServeProcess]]:
    """Start ``jackalope serve`` with an AMQP listener; whatever is still running is killed after."""
    started: list[ServeProcess] = []

    def factory(*args: str, data_dir: Path | None = None) -> ServeProcess:
        p = start_serve_amqp(data_dir or tmp_path / "data", *args)
        started.append(p)
        return p

    yield factory
    for p in started:
        if p.proc.poll() is None:
            p.proc.kill()
            p.proc.wait()
