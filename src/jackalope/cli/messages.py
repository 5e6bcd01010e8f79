"""``jackalope publish``, ``get`` and ``consume``: messages through RabbitMQ's
``POST /api/exchanges/{vhost}/{name}/publish`` and ``POST /api/queues/{vhost}/{name}/get``
(as the management UI and rabbitmqadmin move them; a few at a time, not a client's stream)."""

from __future__ import annotations

import base64
import binascii
import json
import signal
import sys
import threading
from typing import Any

import click

from jackalope.cli.client import path
from jackalope.cli.common import Api, Failure, admin, pairs
from jackalope.cli.output import col, num
from jackalope.cli.topology import exchange_segment

ACKMODES = ("ack_requeue_true", "ack_requeue_false", "reject_requeue_true", "reject_requeue_false")
INT_PROPERTIES = ("delivery_mode", "priority", "timestamp")
PROPERTIES = (
    "content_type",
    "content_encoding",
    "delivery_mode",
    "priority",
    "correlation_id",
    "reply_to",
    "expiration",
    "message_id",
    "timestamp",
    "type",
    "user_id",
    "app_id",
)
POLL_SECONDS = 0.5  # how often consume asks an empty queue again
BATCH = 100


def _properties(items: tuple[str, ...], headers: tuple[str, ...]) -> dict[str, Any]:
    found = pairs(items, "--property", typed=False)
    for key, value in found.items():
        if key not in PROPERTIES:
            raise click.BadParameter(
                f"unknown property {key!r} (one of {', '.join(PROPERTIES)})", param_hint="--property"
            )
        if key in INT_PROPERTIES:
            try:
                found[key] = int(value)
            except ValueError:
                raise click.BadParameter(
                    f"{key} must be an integer, not {value!r}", param_hint="--property"
                ) from None
    if headers:
        found["headers"] = pairs(headers, "--header")
    return found


def _payload(argument: str | None, as_base64: bool) -> tuple[str, str]:
    """The payload and its API encoding: the argument, or stdin for none or ``-``.  Bytes that
    are not UTF-8 travel as base64."""
    raw = sys.stdin.buffer.read() if argument in (None, "-") else str(argument).encode()
    if as_base64:
        try:
            base64.b64decode(raw, validate=True)
        except binascii.Error:
            raise click.BadParameter("the payload is not valid base64", param_hint="--base64") from None
        return raw.decode("ascii"), "base64"
    try:
        return raw.decode("utf-8"), "string"
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), "base64"


@click.command()
@click.option("--exchange", "-e", default="", help="The exchange (default: the AMQP default exchange).")
@click.option(
    "--routing-key", "-k", default="", help="The routing key (a queue's name, for the default exchange)."
)
@click.option(
    "--property",
    "-p",
    "properties",
    multiple=True,
    metavar="KEY=VALUE",
    help=f"A property (repeatable): {', '.join(PROPERTIES)}.",
)
@click.option(
    "--header",
    "-H",
    "headers",
    multiple=True,
    metavar="KEY=VALUE",
    help="A header (repeatable); VALUE is read as JSON if it can be.",
)
@click.option("--base64", "as_base64", is_flag=True, help="The payload is base64 (for binary messages).")
@click.option("--mandatory", is_flag=True, help="Exit 1 if no queue took the message.")
@click.argument("payload", required=False)
@admin
def publish(
    api: Api,
    exchange: str,
    routing_key: str,
    properties: tuple[str, ...],
    headers: tuple[str, ...],
    as_base64: bool,
    mandatory: bool,
    payload: str | None,
) -> None:
    """Publish one message: PAYLOAD, or stdin without it (or with -)."""
    props = _properties(properties, headers)
    body, encoding = _payload(payload, as_base64)
    answer = api.client.post(
        path("exchanges", api.vhost, exchange_segment(exchange), "publish"),
        {"properties": props, "routing_key": routing_key, "payload": body, "payload_encoding": encoding},
    )
    routed = bool(answer.get("routed")) if isinstance(answer, dict) else False
    if mandatory and not routed:
        raise Failure(
            f"the message was not routed: nothing is bound to {exchange or '(AMQP default)'} "
            f"with {routing_key!r}"
        )
    if not routed:
        api.out.note("warning: the message was published but not routed to any queue")
    api.out.done("message published" + ("" if routed else " (not routed)"), {"routed": routed})


def _get(
    api: Api, queue: str, count: int, ackmode: str, encoding: str, truncate: int | None
) -> list[dict[str, Any]]:
    body: dict[str, Any] = {"count": count, "ackmode": ackmode, "encoding": encoding}
    if truncate is not None:
        body["truncate"] = truncate
    found = api.client.post(path("queues", api.vhost, queue, "get"), body)
    return list(found or [])


MESSAGE_COLUMNS = (
    col("ROUTING-KEY", "routing_key"),
    col("EXCHANGE", lambda m: m.get("exchange") or "(AMQP default)"),
    num("REMAINING", "message_count"),
    col("REDELIVERED", "redelivered"),
    num("BYTES", "payload_bytes"),
    col("ENCODING", "payload_encoding"),
    col("PROPERTIES", "properties"),
    col("PAYLOAD", "payload"),
)


@click.command()
@click.argument("queue")
@click.option("--count", "-c", type=click.IntRange(min=1), default=1, show_default=True)
@click.option(
    "--ackmode",
    type=click.Choice(ACKMODES),
    default="ack_requeue_true",
    show_default=True,
    help="ack_requeue_true puts them back (a peek); ack_requeue_false takes them.",
)
@click.option("--encoding", type=click.Choice(["auto", "base64"]), default="auto", show_default=True)
@click.option("--truncate", type=click.IntRange(min=0), default=None, help="Cut payloads at so many bytes.")
@admin
def get(api: Api, queue: str, count: int, ackmode: str, encoding: str, truncate: int | None) -> None:
    """Get up to COUNT messages from QUEUE (by default putting them back: a peek)."""
    messages = _get(api, queue, count, ackmode, encoding, truncate)
    if not messages and not api.out.as_json:
        api.out.note(f"queue {queue} is empty")
        return
    api.out.table(messages, MESSAGE_COLUMNS)


def _show(api: Api, message: dict[str, Any]) -> None:
    if api.out.as_json:
        api.out.line(json.dumps(message, ensure_ascii=False))
    else:
        api.out.line(str(message.get("payload", "")))


@click.command()
@click.argument("queue")
@click.option("--follow", "-f", is_flag=True, help="Keep taking messages until interrupted (Ctrl-C).")
@click.option(
    "--count", "-c", type=click.IntRange(min=1), default=None, help="Take COUNT messages, then stop."
)
@click.option("--encoding", type=click.Choice(["auto", "base64"]), default="auto", show_default=True)
@admin
def consume(api: Api, queue: str, follow: bool, count: int | None, encoding: str) -> None:
    """Take messages from QUEUE (acknowledged: they leave the queue), printing each payload on
    its own line (with --json, each message as a JSON line).  Either --follow, until
    interrupted, or --count N, with a progress bar on a terminal; waits for messages that
    have not arrived yet."""
    if follow == (count is not None):
        raise click.UsageError("give one of --follow or --count N")
    taken = 0
    stop = threading.Event()  # set by Ctrl-C or SIGTERM, seen between requests: none is cut short
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with api.out.progress() as progress:
            task = progress.add_task(f"consuming {queue}", total=count)
            while not stop.is_set() and (count is None or taken < count):
                wanted = BATCH if count is None else min(BATCH, count - taken)
                messages = _get(api, queue, wanted, "ack_requeue_false", encoding, None)
                for message in messages:
                    _show(api, message)
                taken += len(messages)
                progress.update(task, completed=taken)
                if not messages:
                    stop.wait(POLL_SECONDS)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    api.out.note(f"consumed {taken} message{'s' if taken != 1 else ''} from {queue}")


commands: list[click.Command] = [publish, get, consume]
