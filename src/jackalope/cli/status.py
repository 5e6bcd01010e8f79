"""``jackalope status``: the overview (version, listeners, object totals, message rates) and
the alarms in effect, from ``/api/overview`` and ``/api/health/checks/alarms``."""

from __future__ import annotations

from typing import Any

import click

from jackalope.cli.client import path
from jackalope.cli.common import Api, admin
from jackalope.cli.output import Row, col, dig, num, rate

RATES = ("publish", "deliver_get", "ack", "confirm", "redeliver", "return_unroutable")
TOTALS = ("connections", "channels", "exchanges", "queues", "consumers")


def listeners(overview: Row) -> list[Row]:
    """RabbitMQ's listener objects (``protocol``, ``ip_address``, ``port``); an older broker's
    ``{name: url}`` map read as the same."""
    found = overview.get("listeners") or []
    if isinstance(found, dict):
        return [{"protocol": name, "url": url} for name, url in found.items()]
    return [dict(item) for item in found if isinstance(item, dict)]


def alarms(api: Api) -> list[Row]:
    answer = api.client.request("GET", path("health", "checks", "alarms"), accept=(503,))
    found = answer.body.get("alarms", []) if isinstance(answer.body, dict) else []
    return [a for a in found if isinstance(a, dict)]


@click.command()
@admin
def status(api: Api) -> None:
    """The broker's version, listeners, object totals, message rates and alarms."""
    overview: dict[str, Any] = api.client.get(path("overview"))
    active = alarms(api)
    if api.out.as_json:
        api.out.json({**overview, "alarms": active})
        return
    version = overview.get("product_version") or overview.get("version")
    product = overview.get("product_name") or "Jackalope"
    api.out.fields(
        [
            ("Product", f"{product} {version or ''}".strip()),
            ("Node", overview.get("node")),
            ("RabbitMQ API", overview.get("rabbitmq_version")),
            ("Management", overview.get("management_version")),
            ("Alarms", ", ".join(f"{a.get('resource')}: {a.get('reason')}" for a in active) or "none"),
        ]
        + [(f"{name.capitalize()}", dig(overview, f"object_totals.{name}")) for name in TOTALS]
        + [
            ("Messages", dig(overview, "queue_totals.messages")),
            ("  ready", dig(overview, "queue_totals.messages_ready")),
            ("  unacknowledged", dig(overview, "queue_totals.messages_unacknowledged")),
        ]
        + [(f"{name.replace('_', ' ')} /s", rate(overview, name)) for name in RATES]
    )
    found = listeners(overview)
    if found:
        api.out.console.print()
        api.out.table(
            found,
            [
                col("LISTENER", "protocol"),
                col("ADDRESS", lambda r: r.get("url") or r.get("ip_address")),
                num("PORT", "port"),
            ],
        )


commands = [status]
