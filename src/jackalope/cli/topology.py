"""``jackalope declare queue|exchange|binding``, ``delete queue|exchange|binding|topic`` and
``purge queue``: RabbitMQ's PUT/POST/DELETE on ``/api/queues``, ``/api/exchanges`` and
``/api/bindings`` (and ``/api/kafka/topics`` for a topic)."""

from __future__ import annotations

from typing import Any

import click

from jackalope.cli.client import path
from jackalope.cli.common import Api, Failure, admin, pairs
from jackalope.cli.kafka import delete_topic

DEFAULT_EXCHANGE = "amq.default"  # the AMQP default exchange ("") in API paths, as RabbitMQ names it

argument_option = click.option(
    "--argument",
    "-x",
    "arguments",
    multiple=True,
    metavar="KEY=VALUE",
    help="An x-argument (repeatable); VALUE is read as JSON if it can be (x-max-length=10).",
)


def exchange_segment(name: str) -> str:
    return name or DEFAULT_EXCHANGE


@click.group()
def declare() -> None:
    """Declare a queue, an exchange or a binding."""


@declare.command("queue")
@click.argument("name")
@click.option("--type", "queue_type", type=click.Choice(["classic", "quorum", "stream"]), default=None)
@click.option("--durable/--transient", default=True, show_default=True)
@click.option("--auto-delete", is_flag=True)
@argument_option
@admin
def declare_queue(
    api: Api, name: str, queue_type: str | None, durable: bool, auto_delete: bool, arguments: tuple[str, ...]
) -> None:
    """Declare the queue NAME in --vhost."""
    args = pairs(arguments, "--argument")
    if queue_type is not None:
        args["x-queue-type"] = queue_type
    body = {"durable": durable, "auto_delete": auto_delete, "arguments": args}
    api.client.put(path("queues", api.vhost, name), body)
    api.out.done(f"queue {name} declared", {"queue": name, "vhost": api.vhost, "declared": True})


@declare.command("exchange")
@click.argument("name")
@click.option(
    "--type",
    "exchange_type",
    default="direct",
    show_default=True,
    help="direct, fanout, topic, headers or x-...",
)
@click.option("--durable/--transient", default=True, show_default=True)
@click.option("--auto-delete", is_flag=True)
@click.option("--internal", is_flag=True)
@argument_option
@admin
def declare_exchange(
    api: Api,
    name: str,
    exchange_type: str,
    durable: bool,
    auto_delete: bool,
    internal: bool,
    arguments: tuple[str, ...],
) -> None:
    """Declare the exchange NAME in --vhost."""
    body = {
        "type": exchange_type,
        "durable": durable,
        "auto_delete": auto_delete,
        "internal": internal,
        "arguments": pairs(arguments, "--argument"),
    }
    api.client.put(path("exchanges", api.vhost, name), body)
    api.out.done(f"exchange {name} declared", {"exchange": name, "vhost": api.vhost, "declared": True})


def _binding_options(func: Any) -> Any:
    for option in reversed(
        (
            click.option("--source", "-s", required=True, help="The exchange."),
            click.option("--destination", "-d", required=True, help="The queue (or exchange)."),
            click.option(
                "--destination-type",
                type=click.Choice(["queue", "exchange"]),
                default="queue",
                show_default=True,
            ),
            click.option("--routing-key", "-k", default="", help="The binding key."),
            argument_option,
        )
    ):
        func = option(func)
    return func


def _binding_path(api: Api, source: str, destination: str, destination_type: str, *rest: str) -> str:
    kind = "q" if destination_type == "queue" else "e"
    return path("bindings", api.vhost, "e", exchange_segment(source), kind, destination, *rest)


@declare.command("binding")
@_binding_options
@admin
def declare_binding(
    api: Api,
    source: str,
    destination: str,
    destination_type: str,
    routing_key: str,
    arguments: tuple[str, ...],
) -> None:
    """Bind --destination to the exchange --source with --routing-key."""
    body = {"routing_key": routing_key, "arguments": pairs(arguments, "--argument")}
    api.client.post(_binding_path(api, source, destination, destination_type), body)
    api.out.done(
        f"binding {source} -> {destination} ({routing_key!r}) declared",
        {"source": source, "destination": destination, "routing_key": routing_key, "declared": True},
    )


@click.group()
def delete() -> None:
    """Delete a queue, an exchange, a binding or a topic."""


@delete.command("queue")
@click.argument("name")
@click.option("--if-empty", is_flag=True, help="Only if it holds no messages.")
@click.option("--if-unused", is_flag=True, help="Only if it has no consumers.")
@admin
def delete_queue(api: Api, name: str, if_empty: bool, if_unused: bool) -> None:
    """Delete the queue NAME in --vhost."""
    query = {k: "true" for k, on in (("if-empty", if_empty), ("if-unused", if_unused)) if on}
    api.client.delete(path("queues", api.vhost, name), query)
    api.out.done(f"queue {name} deleted", {"queue": name, "vhost": api.vhost, "deleted": True})


@delete.command("exchange")
@click.argument("name")
@click.option("--if-unused", is_flag=True, help="Only if nothing is bound to it.")
@admin
def delete_exchange(api: Api, name: str, if_unused: bool) -> None:
    """Delete the exchange NAME in --vhost."""
    api.client.delete(path("exchanges", api.vhost, name), {"if-unused": "true"} if if_unused else None)
    api.out.done(f"exchange {name} deleted", {"exchange": name, "vhost": api.vhost, "deleted": True})


@delete.command("binding")
@_binding_options
@admin
def delete_binding(
    api: Api,
    source: str,
    destination: str,
    destination_type: str,
    routing_key: str,
    arguments: tuple[str, ...],
) -> None:
    """Delete the binding of --destination to --source with --routing-key (and arguments)."""
    wanted = pairs(arguments, "--argument")
    found = api.client.get(_binding_path(api, source, destination, destination_type))
    match = [b for b in found if b.get("routing_key") == routing_key and (b.get("arguments") or {}) == wanted]
    if not match:
        raise Failure(
            f"no binding of {destination_type} {destination!r} to exchange {source!r} "
            f"with routing key {routing_key!r} in vhost {api.vhost!r}"
        )
    key = str(match[0]["properties_key"])
    api.client.delete(_binding_path(api, source, destination, destination_type, key))
    api.out.done(
        f"binding {source} -> {destination} ({routing_key!r}) deleted",
        {"source": source, "destination": destination, "routing_key": routing_key, "deleted": True},
    )


@delete.command("topic")
@click.argument("name")
@admin
def delete_topic_command(api: Api, name: str) -> None:
    """Delete the Kafka topic NAME and its records."""
    delete_topic(api, name)


@click.group()
def purge() -> None:
    """Purge a queue's messages."""


@purge.command("queue")
@click.argument("name")
@admin
def purge_queue(api: Api, name: str) -> None:
    """Remove every ready message of the queue NAME in --vhost."""
    api.client.delete(path("queues", api.vhost, name, "contents"))
    api.out.done(f"queue {name} purged", {"queue": name, "vhost": api.vhost, "purged": True})


commands: list[click.Command] = [declare, delete, purge]
