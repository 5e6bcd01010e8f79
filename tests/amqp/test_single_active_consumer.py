"""``x-single-active-consumer``: of a queue's consumers only the first is given messages, and
the next takes over when it leaves.  Every test passes against RabbitMQ too
(``JACKALOPE_TEST_AMQP_URL``)."""

from __future__ import annotations

from collections.abc import Callable

from pika.adapters.blocking_connection import BlockingConnection

from tests.amqp.support import Names, wait_until


def test_one_consumer_gets_everything_until_it_leaves(
    connect_to: Callable[..., BlockingConnection], names: Names
) -> None:
    queue = names.queue()
    first_conn, second_conn, publisher = connect_to(), connect_to(), connect_to()
    first_ch, second_ch, pub = first_conn.channel(), second_conn.channel(), publisher.channel()
    pub.queue_declare(queue, arguments={"x-single-active-consumer": True})
    first: list[bytes] = []
    second: list[bytes] = []
    tag = first_ch.basic_consume(queue, lambda ch, m, p, body: first.append(body), auto_ack=True)
    second_ch.basic_consume(queue, lambda ch, m, p, body: second.append(body), auto_ack=True)
    pub.confirm_delivery()
    for i in range(10):
        pub.basic_publish("", queue, b"a%d" % i)

    def both_polled(condition: Callable[[], bool]) -> Callable[[], bool]:
        def poll() -> bool:
            second_conn.process_data_events(time_limit=0.01)
            first_conn.process_data_events(time_limit=0.01)
            return condition()

        return poll

    wait_until(both_polled(lambda: len(first) == 10), "the active consumer's ten messages")
    second_conn.process_data_events(time_limit=0.2)
    assert second == []
    first_ch.basic_cancel(tag)
    for i in range(5):
        pub.basic_publish("", queue, b"b%d" % i)
    wait_until(both_polled(lambda: len(second) == 5), "the next consumer taking over")
    assert second == [b"b%d" % i for i in range(5)]
    assert first == [b"a%d" % i for i in range(10)]
