"""The Kafka side of the HTTP API in the document: topics, their records, consumer groups
(``jackalope.http.kafka_api``, ``kafka_records``, ``kafka_groups``), schemas and operations."""

from __future__ import annotations

from typing import Any, Final

from jackalope.http.openapi.operations import answer, listed, op, query
from jackalope.http.openapi.schemas import (
    BOOLEAN,
    INTEGER,
    OBJECT,
    STRING,
    Schema,
    array,
    nullable,
    obj,
    ref,
)

_BYTES: Final = nullable({"type": "string", "description": "UTF-8 text, or base64 with encoding=base64"})
_HEADERS: Final = {"type": "object", "additionalProperties": _BYTES}
_CONFIG_VALUE: Final = {"anyOf": [STRING, INTEGER]}
_PARTITION: Final = obj(
    {"partition": INTEGER, "low_watermark": INTEGER, "high_watermark": INTEGER, "messages": INTEGER},
    ("partition", "low_watermark", "high_watermark", "messages"),
)

SCHEMAS: Final[dict[str, Schema]] = {
    "KafkaTopicSummary": obj(
        {"name": STRING, "topic_id": STRING, "internal": BOOLEAN, "partitions": INTEGER, "messages": INTEGER},
        ("name", "topic_id", "internal", "partitions", "messages"),
    ),
    "KafkaTopic": obj(
        {
            "name": STRING,
            "topic_id": STRING,
            "internal": BOOLEAN,
            "configs": {"type": "object", "additionalProperties": nullable(STRING)},
            "partitions": array(_PARTITION),
        },
        ("name", "topic_id", "internal", "configs", "partitions"),
    ),
    "KafkaTopicBody": obj(
        {
            "partitions": {"type": "integer", "description": "how many (default: the broker's)"},
            "configs": {"type": "object", "additionalProperties": _CONFIG_VALUE},
        },
        closed=True,
    ),
    "KafkaTopicChange": obj(
        {
            "partitions": {"type": "integer", "description": "grow to this many"},
            "configs": {
                "type": "object",
                "additionalProperties": nullable(_CONFIG_VALUE),
                "description": "null resets a config to its default",
            },
        },
        closed=True,
    ),
    "KafkaRecord": obj(
        {
            "partition": INTEGER,
            "offset": INTEGER,
            "timestamp": INTEGER,
            "key": _BYTES,
            "value": _BYTES,
            "headers": _HEADERS,
        },
        ("partition", "offset", "timestamp", "key", "value", "headers"),
    ),
    "KafkaRecords": obj(
        {"records": array(ref("KafkaRecord")), "next_offset": INTEGER}, ("records", "next_offset")
    ),
    "KafkaRecordView": obj(
        {
            "kafka": obj(
                {
                    "topic": STRING,
                    "partition": INTEGER,
                    "offset": INTEGER,
                    "key": _BYTES,
                    "value": _BYTES,
                    "headers": _HEADERS,
                    "timestamp": INTEGER,
                    "timestamp_type": {"type": "string", "enum": ["CreateTime", "LogAppendTime"]},
                },
                ("topic", "partition", "offset", "key", "value", "headers", "timestamp", "timestamp_type"),
            ),
            "amqp": obj(
                {
                    "exchange": STRING,
                    "routing_key": STRING,
                    "properties": OBJECT,
                    "payload": STRING,
                    "payload_encoding": {"type": "string", "enum": ["string", "base64"]},
                },
                ("exchange", "routing_key", "properties", "payload", "payload_encoding"),
            ),
        },
        ("kafka", "amqp"),
    ),
    "KafkaProduce": obj(
        {
            "records": {
                "type": "array",
                "minItems": 1,
                "items": obj(
                    {
                        "key": _BYTES,
                        "value": _BYTES,
                        "headers": nullable(_HEADERS),
                        "partition": nullable({"type": "integer", "description": "default: by the key"}),
                        "timestamp": nullable({"type": "integer", "minimum": 0, "description": "ms"}),
                    },
                    closed=True,
                ),
            }
        },
        ("records",),
        closed=True,
    ),
    "KafkaProduced": obj(
        {"offsets": array(obj({"partition": INTEGER, "offset": INTEGER}, ("partition", "offset")))},
        ("offsets",),
    ),
    "KafkaGroupSummary": obj(
        {"group_id": STRING, "state": STRING, "protocol_type": STRING, "members": INTEGER, "lag": INTEGER},
        ("group_id", "state", "protocol_type", "members", "lag"),
    ),
    "KafkaGroup": obj(
        {
            "group_id": STRING,
            "state": STRING,
            "protocol_type": STRING,
            "protocol": STRING,
            "members": array(
                obj(
                    {
                        "member_id": STRING,
                        "client_id": STRING,
                        "client_host": STRING,
                        "assignments": array(
                            obj({"topic": STRING, "partition": INTEGER}, ("topic", "partition"))
                        ),
                    },
                    ("member_id", "client_id", "client_host", "assignments"),
                )
            ),
            "offsets": array(
                obj(
                    {
                        "topic": STRING,
                        "partition": INTEGER,
                        "current_offset": nullable(INTEGER),
                        "log_start_offset": INTEGER,
                        "log_end_offset": INTEGER,
                        "lag": nullable(INTEGER),
                        "metadata": nullable(STRING),
                        "consumer_id": nullable(STRING),
                        "host": nullable(STRING),
                        "client_id": nullable(STRING),
                    },
                    ("topic", "partition", "current_offset", "log_start_offset", "log_end_offset", "lag"),
                )
            ),
            "lag": INTEGER,
        },
        ("group_id", "state", "protocol_type", "protocol", "members", "offsets", "lag"),
    ),
    "KafkaResetBody": obj(
        {
            "to": {"type": "string", "enum": ["earliest", "latest", "timestamp", "offset", "shift"]},
            "value": {"type": "integer", "description": "for timestamp (ms), offset and shift"},
            "topics": {
                "type": "array",
                "minItems": 1,
                "items": {"type": "string", "description": '"topic" or "topic:0,1"'},
            },
            "dry_run": BOOLEAN,
        },
        ("to",),
        closed=True,
    ),
    "KafkaReset": obj(
        {
            "offsets": array(
                obj(
                    {"topic": STRING, "partition": INTEGER, "offset": INTEGER},
                    ("topic", "partition", "offset"),
                )
            )
        },
        ("offsets",),
    ),
}

_ENCODING: Final = query("encoding", {"type": "string", "enum": ["utf-8", "base64"]}, "how bytes travel")
_TOPIC = "/api/kafka/topics/{topic}"
_GROUP = "/api/kafka/groups/{group}"

PATHS: Final[dict[str, dict[str, dict[str, Any]]]] = {
    "/api/kafka/topics": {
        "get": op("The topics", {200: answer(listed(SCHEMAS["KafkaTopicSummary"]))}, tag="kafka", lists=True)
    },
    _TOPIC: {
        "get": op("One topic: configs and partitions", {200: answer(ref("KafkaTopic"))}, tag="kafka"),
        "put": op(
            "Create a topic",
            {201: answer(ref("KafkaTopic"), "Created")},
            tag="kafka",
            body=ref("KafkaTopicBody"),
            errors=(409,),
        ),
        "patch": op(
            "Change a topic's configs, grow its partitions",
            {200: answer(ref("KafkaTopic"))},
            tag="kafka",
            body=ref("KafkaTopicChange"),
        ),
        "delete": op("Delete a topic", {204: answer(None, "Deleted")}, tag="kafka"),
    },
    _TOPIC + "/partitions/{partition}/records": {
        "get": op(
            "Browse a partition",
            {200: answer(ref("KafkaRecords"))},
            tag="kafka",
            query=(
                query(
                    "offset",
                    {"type": "integer", "minimum": 0},
                    "from this offset (default: the low watermark)",
                ),
                query(
                    "timestamp", {"type": "integer", "minimum": 0}, "from the first record at or after (ms)"
                ),
                query("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50}),
                query("filter", STRING, "keep records whose key, value or a header value has it"),
                _ENCODING,
            ),
        )
    },
    _TOPIC + "/partitions/{partition}/records/{offset}": {
        "get": op(
            "One record as Kafka and as AMQP see it",
            {200: answer(ref("KafkaRecordView"))},
            tag="kafka",
            query=(_ENCODING,),
        )
    },
    _TOPIC + "/records": {
        "post": op(
            "Produce records (answered once durable)",
            {200: answer(ref("KafkaProduced"))},
            tag="kafka",
            body=ref("KafkaProduce"),
            query=(_ENCODING,),
            errors=(413, 503),
        )
    },
    "/api/kafka/groups": {
        "get": op(
            "The consumer groups",
            {200: answer(listed(SCHEMAS["KafkaGroupSummary"]))},
            tag="kafka",
            lists=True,
            errors=(503,),
        )
    },
    _GROUP: {
        "get": op(
            "One group: members, offsets, lag", {200: answer(ref("KafkaGroup"))}, tag="kafka", errors=(503,)
        ),
        "delete": op("Delete a group", {204: answer(None, "Deleted")}, tag="kafka", errors=(409, 503)),
    },
    _GROUP + "/reset-offsets": {
        "post": op(
            "Reset a group's offsets",
            {200: answer(ref("KafkaReset"))},
            tag="kafka",
            body=ref("KafkaResetBody"),
            errors=(409, 503),
        )
    },
}
