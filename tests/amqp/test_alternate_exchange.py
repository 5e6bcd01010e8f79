"""Alternate exchanges (the ``alternate-exchange`` argument): what an exchange routes nowhere
goes to its alternate, and on along the alternates' own; mandatory returns only what no
alternate took.  Every test passes against RabbitMQ too (``JACKALOPE_TEST_AMQP_URL``)."""

from __future__ import annotations

import pika.exceptions
import pytest
from pika.adapters.blocking_connection import BlockingChannel

from tests.amqp.support import Names, get_all, ready_count, wait_until


def topology(channel: BlockingChannel, names: Names, *, chained: bool = False) -> tuple[str, str, str]:
    """A direct exchange bound to ``routed`` by "known", whose alternate (directly, or through
    an alternate of its own with no bindings) is a fanout bound to ``caught``."""
    routed, caught = names.queue("routed"), names.queue("caught")
    last = names.exchange("last-resort")
    channel.exchange_declare(last, "fanout")
    alternate = last
    if chained:
        alternate = names.exchange("middle")
        channel.exchange_declare(alternate, "direct", arguments={"alternate-exchange": last})
    main = names.exchange("main")
    channel.exchange_declare(main, "direct", arguments={"alternate-exchange": alternate})
    for queue in (routed, caught):
        channel.queue_declare(queue)
    channel.queue_bind(routed, main, "known")
    channel.queue_bind(caught, last)
    return main, routed, caught


@pytest.mark.parametrize("chained", [False, True])
def test_what_routes_nowhere_goes_to_the_alternate(
    channel: BlockingChannel, names: Names, chained: bool
) -> None:
    main, routed, caught = topology(channel, names, chained=chained)
    channel.confirm_delivery()
    channel.basic_publish(main, "known", b"routed")
    channel.basic_publish(main, "unknown", b"caught", mandatory=True)  # taken: no return
    wait_until(lambda: ready_count(channel, caught) == 1, "the alternate's message")
    assert get_all(channel, routed) == [b"routed"]
    assert get_all(channel, caught) == [b"caught"]


def test_a_missing_alternate_leaves_the_message_unroutable(channel: BlockingChannel, names: Names) -> None:
    main = names.exchange("main")
    channel.exchange_declare(main, "direct", arguments={"alternate-exchange": names.exchange("absent")})
    channel.confirm_delivery()
    with pytest.raises(pika.exceptions.UnroutableError):
        channel.basic_publish(main, "anything", b"returned", mandatory=True)
