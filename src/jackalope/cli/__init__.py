"""The ``jackalope`` command: ``serve`` runs the broker; every other command administers a
running broker through its HTTP API (as rabbitmqadmin does), one module per command group."""

from __future__ import annotations

import click

from jackalope import __version__
from jackalope.cli import access, definitions, kafka, lists, messages, status, topology
from jackalope.cli.common import EXIT_CODES_HELP
from jackalope.cli.serve import serve


@click.group(epilog=EXIT_CODES_HELP, context_settings={"max_content_width": 100})
@click.version_option(__version__, prog_name="jackalope")
def main() -> None:
    """Jackalope: RabbitMQ-style queues and Kafka-style logs in one broker.

    `jackalope serve` runs it; the other commands manage a running broker through its HTTP
    API (--url, --username and --password, or JACKALOPE_URL, JACKALOPE_USER and
    JACKALOPE_PASSWORD).  Every command takes --json to print JSON for scripts.
    """


main.add_command(serve)
for module in (status, lists, topology, messages, kafka, definitions, access):
    for command in module.commands:
        main.add_command(command)

__all__ = ["main"]
