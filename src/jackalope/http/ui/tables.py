"""The UI's tables, declared once: which API endpoint fills each, and its columns.

The server renders a table's first rows from these declarations (``templates/macros.html``),
and the same declarations go into the page as JSON (``data-columns``) for ``static/ui.js``,
which refreshes the rows from the table's endpoint: one definition, so both render alike.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from markupsafe import Markup, escape

from jackalope.http.ui.formats import fill, fmt, lookup

PAGE_SIZE = 100  # rows a list page shows at first (RabbitMQ's UI's default)


@dataclass(frozen=True, slots=True)
class Action:
    """A button in each row: ``method`` on the API path ``api`` (a template of the row)."""

    label: str
    method: str
    api: str
    confirm: str = ""  # a sentence with {field}s; empty: no confirmation


@dataclass(frozen=True, slots=True)
class Column:
    label: str
    key: str = ""  # a dotted path into the row
    kind: str = "text"  # a format of formats.FORMATS
    href: str = ""  # a link to this page path (a template of the row)
    empty: str = ""  # shown for an empty value (e.g. the default exchange's name)
    action: Action | None = None
    header: bool = False  # the row's header cell (th scope=row)

    @property
    def numeric(self) -> bool:
        return self.kind in ("int", "rate", "bytes")

    def spec(self) -> dict[str, Any]:
        data: dict[str, Any] = {"label": self.label, "key": self.key, "kind": self.kind}
        if self.href:
            data["href"] = self.href
        if self.empty:
            data["empty"] = self.empty
        if self.header:
            data["header"] = True
        if self.action is not None:
            data["action"] = dataclasses.asdict(self.action)
        return data

    def cell(self, row: Any) -> Markup:
        """The cell's content for ``row`` (the same HTML ui.js builds)."""
        if self.action is not None:
            a = self.action
            confirm = f' data-confirm="{escape(fill(a.confirm, row, encode=False))}"' if a.confirm else ""
            label = escape(f"{a.label} {fill('{' + self.key + '}', row, encode=False)}".strip())
            return Markup(
                f'<button type="button" class="action" data-method="{escape(a.method)}"'
                f' data-api="{escape(fill(a.api, row))}"{confirm} aria-label="{label}">'
                f"{escape(a.label)}</button>"
            )
        text = fmt(lookup(row, self.key), self.kind) or self.empty
        if self.href:
            return Markup(f'<a href="{escape(fill(self.href, row))}">{escape(text)}</a>')
        return escape(text)


@dataclass(frozen=True, slots=True)
class Table:
    id: str
    caption: str
    columns: tuple[Column, ...]
    source: str = ""  # the API path refreshing it; empty: filled by a form's answer
    items: str = ""  # where the rows are in the answer ("" for a list answer)
    refresh: bool = True
    empty: str = "None yet."
    row_key: str = ""  # a template naming a row (keeps focus and order across refreshes)
    context: dict[str, Any] = field(default_factory=dict)  # values every row's templates may use
    paged: bool = False  # the endpoint takes RabbitMQ's page/page_size/name/use_regex
    column_spec: str = field(init=False, default="")

    def __post_init__(self) -> None:
        object.__setattr__(self, "column_spec", json.dumps([c.spec() for c in self.columns]))

    def at(self, source: str = "", **context: Any) -> Table:
        """This table filled from another endpoint, with values for its rows' templates."""
        return dataclasses.replace(self, source=source or self.source, context=context)

    def page(self, query: Mapping[str, str]) -> Table:
        """A paged table at the page, size and name filter a page's query asks for (RabbitMQ's
        list parameters, which the endpoint checks)."""
        params = {"page": query.get("page", "1"), "page_size": query.get("page_size", str(PAGE_SIZE))}
        if query.get("name"):
            params["name"] = query["name"]
            params["use_regex"] = "true" if query.get("use_regex") == "true" else "false"
        return dataclasses.replace(self, source=f"{self.source}?{urlencode(params)}", items="items")

    @property
    def params(self) -> dict[str, str]:
        """The list parameters in its endpoint's query."""
        return dict(parse_qsl(self.source.partition("?")[2]))

    def rows(self, data: Any) -> list[Any]:
        """The rows of an answer of its endpoint, each with the table's context."""
        found = lookup(data, self.items) if self.items else data
        if not isinstance(found, list):
            return []
        return [{**self.context, **row} if isinstance(row, dict) else row for row in found]

    @property
    def context_json(self) -> str:
        return json.dumps(self.context)


def rate(label: str, stat: str) -> Column:
    return Column(label, f"message_stats.{stat}_details.rate", "rate")


# -- overview ---------------------------------------------------------------------------------
LISTENERS = Table(
    "listeners",
    "Listeners",
    (Column("Protocol", "protocol", header=True), Column("Bound to", "ip_address"), Column("Port", "port")),
    source="/api/overview",
    items="listeners",
)
ALARMS = Table(
    "alarms",
    "Alarms in effect",
    (Column("Resource", "resource", header=True), Column("Reason", "reason")),
    source="/api/overview",
    items="alarms",
    empty="No alarms.",
)

# -- AMQP -------------------------------------------------------------------------------------
CONNECTIONS = Table(
    "connections",
    "Connections",
    (
        Column("Name", "name", header=True),
        Column("Protocol", "protocol"),
        Column("User", "user"),
        Column("Virtual host", "vhost"),
        Column("Client", "peer_host"),
        Column("Channels", "channels", "int"),
        Column("State", "state"),
        Column("From client", "recv_oct_details.rate", "rate"),
        Column("To client", "send_oct_details.rate", "rate"),
        Column("Connected at", "connected_at", "time"),
        Column(
            "Close",
            "name",
            action=Action("Close", "DELETE", "/api/connections/{name}", "Close connection {name}?"),
        ),
    ),
    source="/api/connections",
    empty="No connections.",
    paged=True,
    row_key="{name}",
)
CHANNELS = Table(
    "channels",
    "Channels",
    (
        Column("Channel", "name", header=True),
        Column("User", "user"),
        Column("Virtual host", "vhost"),
        Column("Prefetch", "prefetch_count", "int"),
        Column("Consumers", "consumer_count", "int"),
        Column("Unacked", "messages_unacknowledged", "int"),
        Column("Confirm", "confirm", "bool"),
        Column("Transactional", "transactional", "bool"),
        rate("Publish", "publish"),
        rate("Deliver/get", "deliver_get"),
        rate("Ack", "ack"),
    ),
    source="/api/channels",
    empty="No channels.",
    paged=True,
    row_key="{name}",
)
EXCHANGES = Table(
    "exchanges",
    "Exchanges",
    (
        Column("Virtual host", "vhost"),
        Column(
            "Name", "name", href="/exchanges/{vhost}/{name:amq.default}", empty="(AMQP default)", header=True
        ),
        Column("Type", "type"),
        Column("Durable", "durable", "bool"),
        Column("Auto-delete", "auto_delete", "bool"),
        Column("Internal", "internal", "bool"),
        Column("Arguments", "arguments", "json"),
        rate("Rate in", "publish_in"),
        rate("Rate out", "publish_out"),
    ),
    source="/api/exchanges",
    paged=True,
    row_key="{vhost}/{name}",
)
QUEUES = Table(
    "queues",
    "Queues",
    (
        Column("Virtual host", "vhost"),
        Column("Name", "name", href="/queues/{vhost}/{name}", header=True),
        Column("Type", "type"),
        Column("State", "state"),
        Column("Ready", "messages_ready", "int"),
        Column("Unacked", "messages_unacknowledged", "int"),
        Column("Total", "messages", "int"),
        Column("Consumers", "consumers", "int"),
        rate("Incoming", "publish"),
        rate("Deliver/get", "deliver_get"),
        rate("Ack", "ack"),
    ),
    source="/api/queues",
    empty="No queues.",
    paged=True,
    row_key="{vhost}/{name}",
)
QUEUE_CONSUMERS = Table(
    "consumers",
    "Consumers",
    (
        Column("Consumer tag", "consumer_tag", header=True),
        Column("Channel", "channel_details.name"),
        Column("Ack required", "ack_required", "bool"),
        Column("Exclusive", "exclusive", "bool"),
        Column("Prefetch", "prefetch_count", "int"),
        Column("Arguments", "arguments", "json"),
        Column("Status", "activity_status"),
    ),
    items="consumer_details",
    empty="No consumers.",
    row_key="{consumer_tag}",
)
QUEUE_BINDINGS = Table(
    "bindings",
    "Bindings",
    (
        Column("From exchange", "source", href="/exchanges/{vhost}/{source:amq.default}", empty="(default)"),
        Column("Routing key", "routing_key", header=True),
        Column("Arguments", "arguments", "json"),
        Column(
            "Unbind",
            "routing_key",
            action=Action(
                "Unbind",
                "DELETE",
                "/api/bindings/{vhost}/e/{source}/q/{destination}/{properties_key}",
                "Remove the binding from {source} with key {routing_key}?",
            ),
        ),
    ),
    empty="No bindings.",
    row_key="{source}/{properties_key}",
)
EXCHANGE_BINDINGS = Table(
    "bindings",
    "Bindings from this exchange",
    (
        Column("To", "destination", header=True),
        Column("Type", "destination_type"),
        Column("Routing key", "routing_key"),
        Column("Arguments", "arguments", "json"),
    ),
    empty="No bindings.",
    row_key="{destination_type}/{destination}/{properties_key}",
)
MESSAGES = Table(
    "messages",
    "Messages",
    (
        Column("Payload", "payload", header=True),
        Column("Encoding", "payload_encoding"),
        Column("Exchange", "exchange"),
        Column("Routing key", "routing_key"),
        Column("Redelivered", "redelivered", "bool"),
        Column("Properties", "properties", "json"),
        Column("Left in queue", "message_count", "int"),
    ),
    refresh=False,
    empty="No messages got yet.",
)

# -- Kafka ------------------------------------------------------------------------------------
TOPICS = Table(
    "topics",
    "Topics",
    (
        Column("Name", "name", href="/topics/{name}", header=True),
        Column("Partitions", "partitions", "int"),
        Column("Messages", "messages", "int"),
        Column("Internal", "internal", "bool"),
        Column("Topic id", "topic_id"),
    ),
    source="/api/kafka/topics",
    empty="No topics.",
    paged=True,
    row_key="{name}",
)
PARTITIONS = Table(
    "partitions",
    "Partitions",
    (
        Column("Partition", "partition", "int", header=True),
        Column("Low watermark", "low_watermark", "int"),
        Column("High watermark", "high_watermark", "int"),
        Column("Messages", "messages", "int"),
    ),
    items="partitions",
    row_key="{partition}",
)
RECORDS = Table(
    "records",
    "Records",
    (
        Column("Offset", "offset", "int", href="/topics/{topic}/{partition}/{offset}", header=True),
        Column("Partition", "partition", "int"),
        Column("Timestamp (UTC)", "timestamp", "time"),
        Column("Key", "key"),
        Column("Value", "value"),
        Column("Headers", "headers", "json"),
    ),
    items="records",
    refresh=False,
    empty="No records read yet.",
)
GROUPS = Table(
    "groups",
    "Consumer groups",
    (
        Column("Group", "group_id", href="/groups/{group_id}", header=True),
        Column("State", "state"),
        Column("Protocol type", "protocol_type"),
        Column("Members", "members", "int"),
        Column("Lag", "lag", "int"),
    ),
    source="/api/kafka/groups",
    empty="No consumer groups.",
    paged=True,
    row_key="{group_id}",
)
GROUP_MEMBERS = Table(
    "members",
    "Members",
    (
        Column("Member", "member_id", header=True),
        Column("Client id", "client_id"),
        Column("Host", "client_host"),
        Column("Assignments", "assignments", "json"),
    ),
    items="members",
    empty="No members: the group is empty.",
    row_key="{member_id}",
)
GROUP_OFFSETS = Table(
    "offsets",
    "Offsets and lag",
    (
        Column("Topic", "topic", href="/topics/{topic}", header=True),
        Column("Partition", "partition", "int"),
        Column("Current offset", "current_offset", "int"),
        Column("Log start offset", "log_start_offset", "int"),
        Column("Log end offset", "log_end_offset", "int"),
        Column("Lag", "lag", "int"),
        Column("Consumer", "consumer_id"),
        Column("Host", "host"),
        Column("Client id", "client_id"),
    ),
    items="offsets",
    empty="No committed offsets.",
    row_key="{topic}/{partition}",
)
RESET_RESULT = Table(
    "reset-result",
    "New offsets",
    (
        Column("Topic", "topic", header=True),
        Column("Partition", "partition", "int"),
        Column("Offset", "offset", "int"),
    ),
    items="offsets",
    refresh=False,
    empty="No reset done yet.",
)

# -- administration ---------------------------------------------------------------------------
USERS = Table(
    "users",
    "Users",
    (
        Column("Name", "name", header=True),
        Column("Tags", "tags", "list"),
        Column(
            "Delete", "name", action=Action("Delete", "DELETE", "/api/users/{name}", "Delete user {name}?")
        ),
    ),
    source="/api/users",
    row_key="{name}",
)
VHOSTS = Table(
    "vhosts",
    "Virtual hosts",
    (
        Column("Name", "name", header=True),
        Column("Description", "description"),
        Column("Tags", "tags", "list"),
        Column(
            "Delete",
            "name",
            action=Action(
                "Delete", "DELETE", "/api/vhosts/{name}", "Delete virtual host {name} and all in it?"
            ),
        ),
    ),
    source="/api/vhosts",
    row_key="{name}",
)
PERMISSIONS = Table(
    "permissions",
    "Permissions",
    (
        Column("User", "user", header=True),
        Column("Virtual host", "vhost"),
        Column("Configure", "configure"),
        Column("Write", "write"),
        Column("Read", "read"),
        Column(
            "Clear",
            "user",
            action=Action(
                "Clear", "DELETE", "/api/permissions/{vhost}/{user}", "Clear {user}'s permissions in {vhost}?"
            ),
        ),
    ),
    source="/api/permissions",
    row_key="{vhost}/{user}",
)
POLICIES = Table(
    "policies",
    "Policies",
    (
        Column("Virtual host", "vhost"),
        Column("Name", "name", header=True),
        Column("Pattern", "pattern"),
        Column("Apply to", "apply-to"),
        Column("Priority", "priority", "int"),
        Column("Definition", "definition", "json"),
        Column(
            "Delete",
            "name",
            action=Action("Delete", "DELETE", "/api/policies/{vhost}/{name}", "Delete policy {name}?"),
        ),
    ),
    source="/api/policies",
    empty="No policies.",
    row_key="{vhost}/{name}",
)
