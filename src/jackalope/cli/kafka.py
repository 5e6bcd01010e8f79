"""``jackalope topics list|create|alter|describe|delete`` and ``groups list|describe|
reset-offsets|delete``: Kafka topics and consumer groups through ``/api/kafka``, printed as
kafka-topics and kafka-consumer-groups print them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from jackalope.cli.client import path
from jackalope.cli.common import Api, admin, pairs
from jackalope.cli.output import col, num


def kafka_path(*segments: str) -> str:
    return path("kafka", *segments)


def delete_topic(api: Api, name: str) -> None:
    api.client.delete(kafka_path("topics", name))
    api.out.done(f"topic {name} deleted", {"topic": name, "deleted": True})


config_option = click.option(
    "--config",
    "configs",
    multiple=True,
    metavar="NAME=VALUE",
    help="A topic config (repeatable), e.g. retention.ms=60000.",
)

# -- topics -----------------------------------------------------------------------------------


@click.group()
def topics() -> None:
    """Kafka topics: list, create, alter, describe, delete."""


@topics.command("list")
@admin
def topics_list(api: Api) -> None:
    """Every topic: partitions and messages held (high less low watermark)."""
    found = api.client.get(kafka_path("topics"))
    api.out.table(
        found,
        [
            col("NAME", "name"),
            num("PARTITIONS", "partitions"),
            num("MESSAGES", "messages"),
            col("INTERNAL", "internal"),
        ],
    )


def _show_topic(api: Api, topic: dict[str, Any]) -> None:
    if api.out.as_json:
        api.out.json(topic)
        return
    partitions = topic.get("partitions") or []
    api.out.fields(
        [
            ("Topic", topic.get("name")),
            ("TopicId", topic.get("topic_id")),
            ("PartitionCount", len(partitions)),
            ("Internal", topic.get("internal")),
        ]
    )
    api.out.console.print()
    api.out.table(
        partitions,
        [
            num("PARTITION", "partition"),
            num("LOW-WATERMARK", "low_watermark"),
            num("HIGH-WATERMARK", "high_watermark"),
            num("MESSAGES", "messages"),
        ],
    )
    configs = topic.get("configs") or {}
    if configs:
        api.out.console.print()
        api.out.table(
            [{"name": k, "value": v} for k, v in sorted(configs.items())],
            [col("CONFIG", "name"), col("VALUE", "value")],
        )


@topics.command("describe")
@click.argument("name")
@admin
def topics_describe(api: Api, name: str) -> None:
    """The topic NAME: its partitions' watermarks and its effective configs."""
    _show_topic(api, api.client.get(kafka_path("topics", name)))


@topics.command("create")
@click.argument("name")
@click.option(
    "--partitions", type=click.IntRange(min=1), default=None, help="[default: the broker's num.partitions]"
)
@config_option
@admin
def topics_create(api: Api, name: str, partitions: int | None, configs: tuple[str, ...]) -> None:
    """Create the topic NAME."""
    body: dict[str, Any] = {"configs": pairs(configs, "--config", typed=False)}
    if partitions is not None:
        body["partitions"] = partitions
    topic = api.client.put(kafka_path("topics", name), body).body
    if api.out.as_json:
        api.out.json(topic)
    else:
        count = len(topic.get("partitions") or []) if isinstance(topic, dict) else partitions
        api.out.line(f"topic {name} created ({count} partitions)")


@topics.command("alter")
@click.argument("name")
@click.option("--partitions", type=click.IntRange(min=1), default=None, help="Grow to so many partitions.")
@config_option
@click.option(
    "--delete-config",
    "deleted",
    multiple=True,
    metavar="NAME",
    help="Reset a config to its default (repeatable).",
)
@admin
def topics_alter(
    api: Api, name: str, partitions: int | None, configs: tuple[str, ...], deleted: tuple[str, ...]
) -> None:
    """Change the topic NAME's configs or grow its partitions."""
    changes: dict[str, Any] = {**pairs(configs, "--config", typed=False), **dict.fromkeys(deleted)}
    if partitions is None and not changes:
        raise click.UsageError("nothing to alter: give --partitions, --config or --delete-config")
    body: dict[str, Any] = {"configs": changes}
    if partitions is not None:
        body["partitions"] = partitions
    topic = api.client.patch(kafka_path("topics", name), body)
    if api.out.as_json:
        api.out.json(topic)
    else:
        api.out.line(f"topic {name} altered")


@topics.command("delete")
@click.argument("name")
@admin
def topics_delete(api: Api, name: str) -> None:
    """Delete the topic NAME and its records."""
    delete_topic(api, name)


# -- consumer groups --------------------------------------------------------------------------


@click.group()
def groups() -> None:
    """Kafka consumer groups: list, describe (offsets and lag), reset-offsets, delete."""


@groups.command("list")
@admin
def groups_list(api: Api) -> None:
    """Every consumer group: state, members and total lag."""
    found = api.client.get(kafka_path("groups"))
    api.out.table(
        found,
        [
            col("GROUP", "group_id"),
            col("STATE", "state"),
            col("PROTOCOL-TYPE", "protocol_type"),
            num("MEMBERS", "members"),
            num("LAG", "lag"),
        ],
    )


DESCRIBE_COLUMNS = (
    col("GROUP", "group"),
    col("TOPIC", "topic"),
    num("PARTITION", "partition"),
    num("CURRENT-OFFSET", "current_offset"),
    num("LOG-END-OFFSET", "log_end_offset"),
    num("LAG", "lag"),
    col("CONSUMER-ID", "consumer_id"),
    col("HOST", "host"),
    col("CLIENT-ID", "client_id"),
)


@groups.command("describe")
@click.argument("group")
@admin
def groups_describe(api: Api, group: str) -> None:
    """Each partition the group has committed or is assigned: CURRENT-OFFSET, LOG-END-OFFSET
    and LAG, and the member consuming it (as kafka-consumer-groups --describe)."""
    found = api.client.get(kafka_path("groups", group))
    if api.out.as_json:
        api.out.json(found)
        return
    if not found.get("members"):
        api.out.note(f"Consumer group '{group}' has no active members.")
    rows = sorted(
        ({**row, "group": group} for row in found.get("offsets") or []),
        key=lambda r: (str(r.get("topic")), int(r.get("partition") or 0)),
    )
    api.out.table(rows, DESCRIBE_COLUMNS)


def _datetime_ms(text: str) -> int:
    """kafka-consumer-groups' --to-datetime: ISO 8601 (``2024-01-31T12:00:00.000``, an offset
    like ``+01:00`` or ``Z`` optional; local time without one), as epoch milliseconds."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not a date and time like 2024-01-31T12:00:00.000", param_hint="--to-datetime"
        ) from None
    return int(moment.timestamp() * 1000)


@groups.command("reset-offsets")
@click.argument("group")
@click.option("--to-earliest", is_flag=True, help="To each partition's earliest offset.")
@click.option("--to-latest", is_flag=True, help="To each partition's log-end offset.")
@click.option(
    "--to-datetime", metavar="YYYY-MM-DDTHH:mm:SS.sss", help="To the first offset at or after a time."
)
@click.option("--to-offset", type=int, help="To this offset.")
@click.option("--shift-by", type=int, help="Move each offset by N (negative: back).")
@click.option(
    "--topic",
    "topics_",
    multiple=True,
    metavar="TOPIC[:P,P]",
    help="The topic (and partitions) to reset (repeatable).",
)
@click.option("--all-topics", is_flag=True, help="Every topic the group has offsets for.")
@click.option("--dry-run", is_flag=True, help="Show the new offsets without applying them (the default).")
@click.option("--execute", is_flag=True, help="Apply the new offsets.")
@admin
def groups_reset_offsets(
    api: Api,
    group: str,
    to_earliest: bool,
    to_latest: bool,
    to_datetime: str | None,
    to_offset: int | None,
    shift_by: int | None,
    topics_: tuple[str, ...],
    all_topics: bool,
    dry_run: bool,
    execute: bool,
) -> None:
    """Reset GROUP's committed offsets (the group must have no active members).  As with
    kafka-consumer-groups, nothing changes without --execute: the plan is shown instead."""
    scenarios = [
        (on, to, value)
        for on, to, value in (
            (to_earliest, "earliest", None),
            (to_latest, "latest", None),
            (to_datetime is not None, "timestamp", _datetime_ms(to_datetime) if to_datetime else None),
            (to_offset is not None, "offset", to_offset),
            (shift_by is not None, "shift", shift_by),
        )
        if on
    ]
    if len(scenarios) != 1:
        raise click.UsageError(
            "give exactly one of --to-earliest, --to-latest, --to-datetime, --to-offset, --shift-by"
        )
    if bool(topics_) == all_topics:
        raise click.UsageError("give --topic (one or more) or --all-topics")
    if dry_run and execute:
        raise click.UsageError("give --dry-run or --execute, not both")
    if not execute and not dry_run:
        api.out.note("No action will be performed as the --execute option is missing (a dry run).")
    _, to, value = scenarios[0]
    body: dict[str, Any] = {"to": to, "dry_run": not execute}
    if value is not None:
        body["value"] = value
    if topics_:
        body["topics"] = list(topics_)
    answer = api.client.post(kafka_path("groups", group, "reset-offsets"), body)
    rows = [{**row, "group": group} for row in (answer or {}).get("offsets") or []]
    api.out.table(
        rows,
        [
            col("GROUP", "group"),
            col("TOPIC", "topic"),
            num("PARTITION", "partition"),
            num("NEW-OFFSET", "offset"),
        ],
        raw=answer,
    )


@groups.command("delete")
@click.argument("group")
@admin
def groups_delete(api: Api, group: str) -> None:
    """Delete GROUP and its committed offsets (it must have no active members)."""
    api.client.delete(kafka_path("groups", group))
    api.out.done(f"group {group} deleted", {"group": group, "deleted": True})


commands: list[click.Command] = [topics, groups]
