"""The JSON schemas of the API's objects (OpenAPI ``components.schemas``), as the handlers
answer and take them.  Objects in answers are open (``additionalProperties`` left as it is:
a field added later is no breaking change) but name what they always carry as ``required``;
bodies the handlers check key by key are closed (``additionalProperties: false``)."""

from __future__ import annotations

from typing import Any, Final

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(properties: dict[str, Schema], required: tuple[str, ...] = (), closed: bool = False) -> Schema:
    out: Schema = {"type": "object", "properties": properties}
    if required:
        out["required"] = list(required)
    if closed:
        out["additionalProperties"] = False
    return out


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


STRING: Final[Schema] = {"type": "string"}
INTEGER: Final[Schema] = {"type": "integer"}
NUMBER: Final[Schema] = {"type": "number"}
BOOLEAN: Final[Schema] = {"type": "boolean"}
OBJECT: Final[Schema] = {"type": "object"}
# A flag in a body: a boolean, or "true"/"false" as rabbitmqadmin sends it.
FLAG: Final[Schema] = {"anyOf": [BOOLEAN, {"type": "string", "enum": ["true", "false"]}]}
# An integer in a body: a number, or a decimal string as rabbitmqadmin sends it.
INTEGRAL: Final[Schema] = {"anyOf": [INTEGER, {"type": "string", "pattern": "^-?[0-9]+$"}]}
TAGS: Final[Schema] = {
    "anyOf": [array(STRING), STRING, {"type": "null"}],
    "description": "a list, or one comma-separated string",
}

_QUEUE_TYPES: Final = ["classic", "quorum", "stream"]


SCHEMAS: Final[dict[str, Schema]] = {
    "Error": obj(
        {
            "error": {"type": "string", "description": "the kind of error"},
            "reason": {"type": "string", "description": "what went wrong, for a person"},
        },
        ("error", "reason"),
    ),
    "HealthOk": obj({"status": {"const": "ok"}}, ("status",)),
    "HealthFailed": obj({"status": {"const": "failed"}, "reason": STRING}, ("status", "reason")),
    "Rate": obj({"rate": NUMBER}, ("rate",)),
    "MessageStats": {
        "type": "object",
        "description": "RabbitMQ's message_stats: each nonzero count and its <name>_details rate",
        "patternProperties": {"_details$": ref("Rate")},
        "additionalProperties": INTEGER,
    },
    "Page": obj(
        {
            "filtered_count": INTEGER,
            "item_count": INTEGER,
            "items": array(OBJECT),
            "page": INTEGER,
            "page_count": INTEGER,
            "page_size": INTEGER,
            "total_count": INTEGER,
        },
        ("filtered_count", "item_count", "items", "page", "page_count", "page_size", "total_count"),
    ),
    "Whoami": obj({"name": STRING, "tags": array(STRING)}, ("name", "tags")),
    "Listener": obj(
        {"node": STRING, "protocol": STRING, "ip_address": nullable(STRING), "port": nullable(INTEGER)},
        ("node", "protocol", "ip_address", "port"),
    ),
    "Alarm": obj({"resource": STRING, "reason": STRING}, ("resource", "reason")),
    "ExchangeType": obj(
        {"name": STRING, "description": STRING, "enabled": BOOLEAN}, ("name", "description", "enabled")
    ),
    "Overview": obj(
        {
            "management_version": STRING,
            "rabbitmq_version": STRING,
            "product_name": {"const": "Jackalope"},
            "product_version": STRING,
            "cluster_name": STRING,
            "node": STRING,
            "rates_mode": STRING,
            "exchange_types": array(ref("ExchangeType")),
            "message_stats": ref("MessageStats"),
            "queue_totals": obj(
                {"messages": INTEGER, "messages_ready": INTEGER, "messages_unacknowledged": INTEGER},
                ("messages", "messages_ready", "messages_unacknowledged"),
            ),
            "object_totals": obj(
                {
                    "connections": INTEGER,
                    "channels": INTEGER,
                    "consumers": INTEGER,
                    "exchanges": INTEGER,
                    "queues": INTEGER,
                },
                ("connections", "channels", "consumers", "exchanges", "queues"),
            ),
            "listeners": array(ref("Listener")),
            "contexts": array(OBJECT),
            "alarms": array(ref("Alarm")),
            "data_dir": nullable(STRING),
        },
        (
            "management_version",
            "rabbitmq_version",
            "product_name",
            "product_version",
            "node",
            "message_stats",
            "queue_totals",
            "object_totals",
            "listeners",
        ),
    ),
    "Node": obj(
        {
            "name": STRING,
            "type": STRING,
            "running": BOOLEAN,
            "uptime": INTEGER,
            "mem_used": INTEGER,
            "mem_limit": INTEGER,
            "mem_alarm": BOOLEAN,
            "disk_free": INTEGER,
            "disk_free_limit": INTEGER,
            "disk_free_alarm": BOOLEAN,
            "fd_used": INTEGER,
            "fd_total": INTEGER,
            "sockets_used": INTEGER,
            "proc_used": INTEGER,
            "processors": INTEGER,
            "os_pid": STRING,
            "partitions": array(STRING),
            "applications": array(OBJECT),
            "exchange_types": array(ref("ExchangeType")),
        },
        ("name", "running", "uptime", "mem_used", "mem_limit", "disk_free", "disk_free_limit"),
    ),
    "User": obj(
        {
            "name": STRING,
            "password_hash": STRING,
            "hashing_algorithm": STRING,
            "tags": array(STRING),
            "limits": OBJECT,
        },
        ("name", "password_hash", "hashing_algorithm", "tags"),
    ),
    "UserBody": obj(
        {
            "password": nullable(STRING),
            "password_hash": nullable(STRING),
            "hashing_algorithm": nullable(STRING),
            "tags": TAGS,
        },
    ),
    "Vhost": obj(
        {
            "name": STRING,
            "description": STRING,
            "tags": array(STRING),
            "metadata": obj({"description": STRING, "tags": array(STRING)}),
            "tracing": BOOLEAN,
            "messages": INTEGER,
            "messages_ready": INTEGER,
            "messages_unacknowledged": INTEGER,
        },
        ("name", "description", "tags", "tracing"),
    ),
    "VhostBody": obj(
        {
            "description": nullable(STRING),
            "tags": TAGS,
            "tracing": {**FLAG, "description": "true is refused: tracing is not supported"},
        },
    ),
    "Permission": obj(
        {"user": STRING, "vhost": STRING, "configure": STRING, "write": STRING, "read": STRING},
        ("user", "vhost", "configure", "write", "read"),
    ),
    "PermissionBody": obj(
        {
            "configure": {"type": "string", "description": "a regular expression"},
            "write": {"type": "string", "description": "a regular expression"},
            "read": {"type": "string", "description": "a regular expression"},
        },
        ("configure", "write", "read"),
    ),
    "VhostLimits": obj(
        {"vhost": STRING, "value": {"type": "object", "additionalProperties": INTEGER}}, ("vhost", "value")
    ),
    "VhostLimitBody": obj(
        {"value": {"type": "integer", "description": "the limit; negative: none"}}, ("value",)
    ),
    "Policy": obj(
        {
            "vhost": STRING,
            "name": STRING,
            "pattern": STRING,
            "apply-to": STRING,
            "definition": OBJECT,
            "priority": INTEGER,
        },
        ("vhost", "name", "pattern", "apply-to", "definition", "priority"),
    ),
    "PolicyBody": obj(
        {
            "pattern": {"type": "string", "description": "a regular expression"},
            "definition": {"type": "object", "minProperties": 1},
            "apply-to": {
                "type": "string",
                "enum": ["queues", "exchanges", "all", "classic_queues", "quorum_queues", "streams"],
            },
            "priority": INTEGER,
        },
        ("pattern", "definition"),
    ),
    "Definitions": obj(
        {
            key: array(OBJECT)
            for key in (
                "users",
                "vhosts",
                "permissions",
                "topic_permissions",
                "parameters",
                "global_parameters",
                "policies",
                "queues",
                "exchanges",
                "bindings",
            )
        }
        | {"rabbit_version": STRING, "rabbitmq_version": STRING, "product_name": STRING},
    ),
    "Queue": obj(
        {
            "name": STRING,
            "vhost": STRING,
            "type": {"type": "string", "enum": _QUEUE_TYPES},
            "durable": BOOLEAN,
            "auto_delete": BOOLEAN,
            "exclusive": BOOLEAN,
            "arguments": OBJECT,
            "node": STRING,
            "state": STRING,
            "policy": nullable(STRING),
            "operator_policy": nullable(STRING),
            "effective_policy_definition": OBJECT,
            "consumers": INTEGER,
            "messages": INTEGER,
            "messages_ready": INTEGER,
            "messages_unacknowledged": INTEGER,
            "message_stats": ref("MessageStats"),
            "consumer_details": array(ref("Consumer")),
        },
        (
            "name",
            "vhost",
            "type",
            "durable",
            "auto_delete",
            "exclusive",
            "arguments",
            "state",
            "consumers",
            "messages",
            "messages_ready",
            "messages_unacknowledged",
            "message_stats",
        ),
    ),
    "QueueBody": obj(
        {
            "durable": FLAG,
            "auto_delete": FLAG,
            "arguments": nullable(OBJECT),
            "node": nullable({"type": "string", "description": "this node's name"}),
            "vhost": {"type": "string", "description": "as in the path"},
            "name": {"type": "string", "description": "as in the path"},
            "queue": {"type": "string", "description": "as in the path"},
        },
        closed=True,
    ),
    "GetBody": {
        **obj(
            {
                "count": {**INTEGRAL, "description": "how many to take (at least 1)"},
                "ackmode": {
                    "type": "string",
                    "enum": [
                        "ack_requeue_true",
                        "ack_requeue_false",
                        "reject_requeue_true",
                        "reject_requeue_false",
                    ],
                },
                "encoding": {"type": "string", "enum": ["auto", "base64"]},
                "truncate": nullable(INTEGRAL),
                "requeue": {**FLAG, "description": "RabbitMQ's older form of ackmode"},
                "vhost": STRING,
                "name": STRING,
                "queue": STRING,
            },
            closed=True,
        ),
        "anyOf": [{"required": ["ackmode"]}, {"required": ["requeue"]}],
    },
    "Message": obj(
        {
            "payload": STRING,
            "payload_bytes": INTEGER,
            "payload_encoding": {"type": "string", "enum": ["string", "base64"]},
            "redelivered": BOOLEAN,
            "exchange": STRING,
            "routing_key": STRING,
            "message_count": INTEGER,
            "properties": OBJECT,
        },
        (
            "payload",
            "payload_bytes",
            "payload_encoding",
            "redelivered",
            "exchange",
            "routing_key",
            "message_count",
            "properties",
        ),
    ),
    "Exchange": obj(
        {
            "name": STRING,
            "vhost": STRING,
            "type": STRING,
            "durable": BOOLEAN,
            "auto_delete": BOOLEAN,
            "internal": BOOLEAN,
            "arguments": OBJECT,
            "policy": nullable(STRING),
            "user_who_performed_action": STRING,
            "message_stats": ref("MessageStats"),
        },
        ("name", "vhost", "type", "durable", "auto_delete", "internal", "arguments"),
    ),
    "ExchangeBody": obj(
        {
            "type": {
                "type": "string",
                "description": "direct, fanout, topic, headers, …",
                "example": "direct",
            },
            "durable": FLAG,
            "auto_delete": FLAG,
            "internal": FLAG,
            "arguments": nullable(OBJECT),
            "vhost": {"type": "string", "description": "as in the path"},
            "name": {"type": "string", "description": "as in the path"},
            "exchange": {"type": "string", "description": "as in the path"},
        },
        ("type",),
        closed=True,
    ),
    "MessageProperties": obj(
        {
            "content_type": STRING,
            "content_encoding": STRING,
            "headers": OBJECT,
            "delivery_mode": {"type": "integer", "enum": [1, 2]},
            "priority": {"type": "integer", "minimum": 0, "maximum": 255},
            "correlation_id": STRING,
            "reply_to": STRING,
            "expiration": {"type": "string", "pattern": "^[0-9]+$"},
            "message_id": STRING,
            "timestamp": {"type": "integer", "description": "seconds since the epoch"},
            "type": STRING,
            "user_id": {"type": "string", "description": "the authenticated user's name"},
            "app_id": STRING,
            "cluster_id": STRING,
        },
        closed=True,
    ),
    "PublishBody": obj(
        {
            "routing_key": STRING,
            "properties": nullable(ref("MessageProperties")),
            "payload": STRING,
            "payload_encoding": {"type": "string", "enum": ["string", "base64"]},
            "vhost": {"type": "string", "description": "as in the path"},
            "name": {"type": "string", "description": "as in the path"},
            "exchange": {"type": "string", "description": "as in the path"},
        },
        closed=True,
    ),
    "Routed": obj({"routed": BOOLEAN}, ("routed",)),
    "Binding": obj(
        {
            "source": STRING,
            "vhost": STRING,
            "destination": STRING,
            "destination_type": {"type": "string", "enum": ["queue", "exchange"]},
            "routing_key": STRING,
            "arguments": OBJECT,
            "properties_key": STRING,
        },
        ("source", "vhost", "destination", "destination_type", "routing_key", "arguments", "properties_key"),
    ),
    "BindingBody": obj(
        {
            "routing_key": STRING,
            "arguments": nullable(OBJECT),
            "vhost": {"type": "string", "description": "as in the path"},
            "source": {"type": "string", "description": "as in the path"},
            "destination": {"type": "string", "description": "as in the path"},
            "destination_type": {"type": "string", "description": "queue or exchange, as in the path"},
        },
        closed=True,
    ),
    "Connection": obj(
        {
            "name": STRING,
            "node": STRING,
            "type": STRING,
            "protocol": STRING,
            "user": STRING,
            "vhost": nullable(STRING),
            "host": nullable(STRING),
            "port": nullable(INTEGER),
            "peer_host": nullable(STRING),
            "peer_port": nullable(INTEGER),
            "ssl": BOOLEAN,
            "auth_mechanism": nullable(STRING),
            "state": {"type": "string", "enum": ["running", "blocked"]},
            "channels": INTEGER,
            "channel_max": nullable(INTEGER),
            "frame_max": nullable(INTEGER),
            "timeout": nullable(INTEGER),
            "connected_at": INTEGER,
            "client_properties": OBJECT,
            "recv_oct": INTEGER,
            "send_oct": INTEGER,
        },
        ("name", "node", "protocol", "user", "state", "channels", "connected_at"),
    ),
    "Channel": obj(
        {
            "name": STRING,
            "number": INTEGER,
            "node": STRING,
            "user": STRING,
            "vhost": nullable(STRING),
            "connection_details": obj(
                {"name": STRING, "peer_host": nullable(STRING), "peer_port": nullable(INTEGER)}, ("name",)
            ),
            "consumer_count": INTEGER,
            "messages_unacknowledged": INTEGER,
            "prefetch_count": INTEGER,
            "global_prefetch_count": INTEGER,
            "confirm": BOOLEAN,
            "transactional": BOOLEAN,
            "state": STRING,
            "message_stats": ref("MessageStats"),
        },
        ("name", "number", "user", "connection_details", "consumer_count", "messages_unacknowledged"),
    ),
    "Consumer": obj(
        {
            "consumer_tag": STRING,
            "queue": obj({"name": STRING, "vhost": nullable(STRING)}, ("name", "vhost")),
            "channel_details": obj(
                {
                    "name": STRING,
                    "number": INTEGER,
                    "connection_name": STRING,
                    "peer_host": nullable(STRING),
                    "peer_port": nullable(INTEGER),
                    "user": STRING,
                },
                ("name", "number", "connection_name"),
            ),
            "ack_required": BOOLEAN,
            "exclusive": BOOLEAN,
            "prefetch_count": INTEGER,
            "arguments": OBJECT,
            "active": BOOLEAN,
            "activity_status": STRING,
        },
        ("consumer_tag", "queue", "channel_details", "ack_required", "exclusive", "arguments"),
    ),
}
