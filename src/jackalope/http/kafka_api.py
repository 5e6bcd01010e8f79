"""Kafka topics over HTTP: ``/api/kafka/topics[/{topic}]``, and what the Kafka routes share.

``GET /api/kafka/topics`` lists the topics (name, id, partitions, messages: the sum over the
partitions of high minus low watermark) with the management API's list parameters;
``GET /api/kafka/topics/{topic}`` adds the effective configs (Kafka's names) and each
partition's watermarks.  ``PUT`` creates (201; 409 ``topic_already_exists``), ``PATCH``
changes configs (a null value resets one to its default) and grows the partition count,
``DELETE`` deletes (a stream queue of that name goes with its topic).  Topics are the core's
(:mod:`jackalope.core.topics`), the same that Kafka's admin requests change.

Reading needs the ``monitoring`` or ``administrator`` tag, changing ``administrator``.  The
records of a partition are :mod:`jackalope.http.kafka_records`' business, consumer groups
:mod:`jackalope.http.kafka_groups`'.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from jackalope.core.topics import (
    InvalidConfig,
    InvalidPartitions,
    InvalidTopicName,
    Topic,
    TopicError,
    TopicExists,
    Topics,
    UnknownTopic,
)
from jackalope.http import listing
from jackalope.http.base import (
    CORE,
    ApiError,
    bad_request,
    json_object,
    require_administrator,
    require_monitor,
    unknown_keys,
)
from jackalope.storage import Log

routes = web.RouteTableDef()

ENCODINGS = ("utf-8", "base64")


# -- what every Kafka route shares -----------------------------------------------------------------


def topics_of(request: web.Request) -> Topics:
    return request.app[CORE].topics


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", what)


def topic_or_404(request: web.Request, name: str | None = None) -> Topic:
    name = request.match_info["topic"] if name is None else name
    topic = topics_of(request).get(name)
    if topic is None:
        raise not_found(f"no topic {name!r}")
    return topic


def partition_or_404(request: web.Request, topic: Topic) -> tuple[int, Log]:
    raw = request.match_info["partition"]
    try:
        partition = int(raw)
    except ValueError:
        raise bad_request(f"partition {raw!r} is not an integer") from None
    log_ = topic.log(partition)
    if log_ is None:
        raise not_found(f"topic {topic.name!r} has no partition {partition}")
    return partition, log_


def topic_error(exc: TopicError) -> ApiError:
    if isinstance(exc, TopicExists):
        return ApiError(409, "topic_already_exists", str(exc))
    if isinstance(exc, UnknownTopic):
        return not_found(str(exc))
    if isinstance(exc, InvalidTopicName):
        return ApiError(400, "invalid_topic_name", str(exc))
    if isinstance(exc, InvalidPartitions):
        return ApiError(400, "invalid_partitions", str(exc))
    if isinstance(exc, InvalidConfig):
        return ApiError(400, "invalid_config", str(exc))
    return bad_request(str(exc))


async def object_body(request: web.Request, allowed: Sequence[str]) -> dict[str, Any]:
    """The JSON object body (400 if it is not one, or has a key not in ``allowed``)."""
    body = await json_object(request)
    unknown_keys(body, set(allowed))
    return body


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def int_param(request: web.Request, name: str, default: int, low: int, high: int | None = None) -> int:
    """Query parameter ``name`` as an integer in [low, high] (400 otherwise)."""
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"{name} must be an integer, not {raw!r}") from None
    if value < low or (high is not None and value > high):
        bounds = f"at least {low}" if high is None else f"between {low} and {high}"
        raise bad_request(f"{name} must be {bounds}, not {value}")
    return value


def encoding(request: web.Request) -> str:
    value = request.query.get("encoding", "utf-8")
    if value not in ENCODINGS:
        raise bad_request(f"encoding must be utf-8 or base64, not {value!r}")
    return value


def encode(data: bytes | None, how: str) -> str | None:
    """Bytes as JSON text: UTF-8 (undecodable bytes replaced) or base64."""
    if data is None:
        return None
    if how == "base64":
        return base64.b64encode(data).decode()
    return data.decode(errors="replace")


def decode(text: Any, how: str, what: str) -> bytes | None:
    """JSON text (or null) as bytes, the inverse of :func:`encode` (400 if it is not)."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise bad_request(f"{what} must be a string or null")
    if how == "base64":
        try:
            return base64.b64decode(text, validate=True)
        except binascii.Error:
            raise bad_request(f"{what} is not valid base64") from None
    return text.encode()


# -- topics ----------------------------------------------------------------------------------------


def _partition(p: int, log_: Log) -> dict[str, Any]:
    low, high = log_.start_offset, log_.end_offset
    return {"partition": p, "low_watermark": low, "high_watermark": high, "messages": high - low}


def topic_summary(topic: Topic) -> dict[str, Any]:
    return {
        "name": topic.name,
        "topic_id": str(topic.topic_id),
        "internal": False,  # the consumer groups' offsets are a log of their own, not a topic
        "partitions": len(topic.partitions),
        "messages": sum(log_.end_offset - log_.start_offset for log_ in topic.partitions),
    }


def _topic(topics: Topics, topic: Topic) -> dict[str, Any]:
    return {
        "name": topic.name,
        "topic_id": str(topic.topic_id),
        "internal": False,
        "configs": {e.name: e.value for e in topics.describe_configs(topic.name)},
        "partitions": [_partition(p, log_) for p, log_ in enumerate(topic.partitions)],
    }


def _config_value(name: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if is_int(value):
        return str(value)
    raise ApiError(400, "invalid_config", f"the value of {name} must be a string or an integer")


def _configs(body: dict[str, Any], *, nulls: bool) -> dict[str, str | None]:
    configs = body.get("configs", {})
    if not isinstance(configs, dict):
        raise bad_request("configs must be an object of config names and values")
    out: dict[str, str | None] = {}
    for name, value in configs.items():
        out[name] = None if value is None and nulls else _config_value(name, value)
    return out


def _partitions(body: dict[str, Any]) -> int | None:
    count = body.get("partitions")
    if count is not None and not is_int(count):
        raise ApiError(400, "invalid_partitions", "partitions must be an integer")
    return count


@routes.get("/api/kafka/topics")
async def list_topics(request: web.Request) -> web.Response:
    require_monitor(request)
    return listing.respond(request, [topic_summary(t) for t in topics_of(request)])


@routes.get("/api/kafka/topics/{topic}")
async def get_topic(request: web.Request) -> web.Response:
    require_monitor(request)
    return web.json_response(_topic(topics_of(request), topic_or_404(request)))


@routes.put("/api/kafka/topics/{topic}")
async def create_topic(request: web.Request) -> web.Response:
    require_administrator(request)
    body = await object_body(request, ("partitions", "configs"))
    configs = {k: v for k, v in _configs(body, nulls=False).items() if v is not None}
    count = _partitions(body)
    topics = topics_of(request)
    try:
        topic = topics.create(request.match_info["topic"], -1 if count is None else count, configs)
    except TopicError as exc:
        raise topic_error(exc) from None
    return web.json_response(_topic(topics, topic), status=201)


@routes.patch("/api/kafka/topics/{topic}")
async def alter_topic(request: web.Request) -> web.Response:
    require_administrator(request)
    body = await object_body(request, ("partitions", "configs"))
    topics = topics_of(request)
    topic = topic_or_404(request)
    overrides = dict(topic.configs)
    for name, value in _configs(body, nulls=True).items():
        if value is None:
            overrides.pop(name, None)
        else:
            overrides[name] = value
    count = _partitions(body)
    grow = count is not None and count != len(topic.partitions)
    try:
        # Everything is checked before anything changes: a bad request changes nothing.
        topics.set_configs(topic.name, overrides, validate_only=True)
        if grow:
            assert count is not None
            topics.add_partitions(topic.name, count, validate_only=True)
        if "configs" in body:
            topics.set_configs(topic.name, overrides)
        if grow:
            assert count is not None
            topics.add_partitions(topic.name, count)
    except TopicError as exc:
        raise topic_error(exc) from None
    return web.json_response(_topic(topics, topic))


@routes.delete("/api/kafka/topics/{topic}")
async def delete_topic(request: web.Request) -> web.Response:
    require_administrator(request)
    try:
        topics_of(request).delete(topic_or_404(request).name)
    except TopicError as exc:
        raise topic_error(exc) from None
    return web.Response(status=204)
