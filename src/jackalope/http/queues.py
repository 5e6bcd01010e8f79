"""Queues over HTTP, in RabbitMQ's management API shape.

``GET /api/queues[/{vhost}]`` lists; ``GET|PUT|DELETE /api/queues/{vhost}/{name}`` shows,
declares (``durable``, ``auto_delete``, ``arguments``; 201 new, 204 the same queue again, 400
an inequivalent one) and deletes (``if-empty``, ``if-unused`` query parameters);
``DELETE …/contents`` purges; ``POST …/get`` takes messages (``count``, ``ackmode``,
``encoding``, ``truncate``) as RabbitMQ's "Get messages" does; ``GET …/bindings`` lists the
queue's bindings.  Who may: seeing a vhost's queues needs access to the vhost; declaring and
deleting need ``configure`` on the queue, purging and getting ``read``, checked as AMQP
checks them (403 otherwise).
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from jackalope.amqp.consumers import delivered_properties
from jackalope.core import policies
from jackalope.core.queue import Queue
from jackalope.core.queue_types import QueueType
from jackalope.core.vhost import VirtualHost
from jackalope.http import amqp_messages, listing
from jackalope.http.base import (
    CORE,
    bad_request,
    created,
    flag,
    grant_of,
    integer,
    json_object,
    not_found,
    unknown_keys,
    vhost_of,
    visible_vhosts,
)
from jackalope.http.bindings import all_queues, bindings_of_destination
from jackalope.http.connections import consumers_json

routes = web.RouteTableDef()

MANAGEMENT: Final = object()  # the owner of what the API declares (never exclusive)
ACKMODES: Final = ("ack_requeue_true", "ack_requeue_false", "reject_requeue_true", "reject_requeue_false")


def queue_json(request: web.Request, vhost: VirtualHost, queue: QueueType) -> dict[str, Any]:
    ready, unacked = queue.message_count, queue.unacked_count
    policy = policies.choose(vhost.policies.values(), queue.name, queue.type_name)
    operator = policies.choose(vhost.operator_policies.values(), queue.name, queue.type_name)
    effective = {**(policy.definition if policy else {}), **(operator.definition if operator else {})}
    return {
        "name": queue.name,
        "vhost": vhost.name,
        "type": queue.type_name,
        "durable": queue.durable,
        "auto_delete": queue.auto_delete,
        "exclusive": queue.exclusive_owner is not None,
        "arguments": queue.arguments,
        "node": request.app[CORE].node_name,
        "state": "running",
        "policy": policy.name if policy else None,
        "operator_policy": operator.name if operator else None,
        "effective_policy_definition": effective,
        "consumers": queue.consumer_count,
        "messages": ready + unacked,
        "messages_ready": ready,
        "messages_unacknowledged": unacked,
        "message_stats": queue.stats.as_json(("publish", "deliver", "get", "get_empty", "redeliver", "ack")),
    }


def _queue(request: web.Request) -> tuple[VirtualHost, QueueType]:
    vhost = vhost_of(request)
    name = request.match_info["name"]
    queue: QueueType | None = vhost.queues.get(name) or vhost.streams.get(name)
    if queue is None:
        raise not_found()
    return vhost, queue


@routes.get("/api/queues")
async def list_queues(request: web.Request) -> web.Response:
    core = request.app[CORE]
    items = [
        queue_json(request, core.vhosts[v], q)
        for v in visible_vhosts(request)
        for q in all_queues(core.vhosts[v])
    ]
    return listing.respond(request, items)


@routes.get("/api/queues/{vhost}")
async def list_vhost_queues(request: web.Request) -> web.Response:
    vhost = vhost_of(request)
    return listing.respond(request, [queue_json(request, vhost, q) for q in all_queues(vhost)])


@routes.get("/api/queues/{vhost}/{name}")
async def get_queue(request: web.Request) -> web.Response:
    vhost, queue = _queue(request)
    out = queue_json(request, vhost, queue)
    out["consumer_details"] = [
        c
        for c in consumers_json(request)
        if c["queue"]["name"] == queue.name and c["queue"]["vhost"] == vhost.name
    ]
    return web.json_response(out)


@routes.put("/api/queues/{vhost}/{name}")
async def put_queue(request: web.Request) -> web.Response:
    vhost = vhost_of(request)
    name = request.match_info["name"]
    body = await json_object(request)
    path = {"vhost": vhost.name, "name": name, "queue": name}
    unknown_keys(body, {"durable", "auto_delete", "arguments", "node"}, path)
    node = body.get("node")
    if node is not None and node != request.app[CORE].node_name:
        raise bad_request(f"no node {node!r} in this cluster (the node is {request.app[CORE].node_name})")
    durable, auto_delete = flag(body, "durable", False), flag(body, "auto_delete", False)
    arguments = body.get("arguments") or {}
    if not isinstance(arguments, dict):
        raise bad_request("arguments must be an object")
    grant = grant_of(request, vhost)
    existed = name in vhost.queues or name in vhost.streams
    vhost.declare_queue(
        name, owner=MANAGEMENT, durable=durable, auto_delete=auto_delete, arguments=arguments, grant=grant
    )
    return created(not existed)


@routes.delete("/api/queues/{vhost}/{name}")
async def delete_queue(request: web.Request) -> web.Response:
    vhost, queue = _queue(request)
    grant_of(request, vhost).check("configure", "queue", queue.name)
    vhost.delete_queue(
        queue.name,
        owner=queue.exclusive_owner,
        if_unused=request.query.get("if-unused", "false") == "true",
        if_empty=request.query.get("if-empty", "false") == "true",
    )
    return web.Response(status=204)


@routes.delete("/api/queues/{vhost}/{name}/contents")
async def purge_queue(request: web.Request) -> web.Response:
    vhost, queue = _queue(request)
    grant_of(request, vhost).check("read", "queue", queue.name)
    queue.purge()
    return web.Response(status=204)


@routes.get("/api/queues/{vhost}/{name}/bindings")
async def queue_bindings(request: web.Request) -> web.Response:
    vhost, queue = _queue(request)
    return listing.respond(request, bindings_of_destination(vhost, queue), default_sort="")


@routes.post("/api/queues/{vhost}/{name}/get")
async def get_messages(request: web.Request) -> web.Response:
    """RabbitMQ's "Get messages": take up to ``count``, then settle them all per ``ackmode``
    (so a requeueing get never takes the same message twice)."""
    vhost, queue = _queue(request)
    body = await json_object(request)
    path = {"vhost": vhost.name, "name": queue.name, "queue": queue.name}
    unknown_keys(body, {"count", "ackmode", "encoding", "truncate", "requeue"}, path)
    count, ackmode = integer(body, "count", 1), body.get("ackmode")
    encoding, truncate = body.get("encoding", "auto"), integer(body, "truncate", None)
    if "requeue" in body and ackmode is None:  # RabbitMQ's older form
        ackmode = "ack_requeue_true" if body["requeue"] in (True, "true") else "ack_requeue_false"
    if ackmode not in ACKMODES:
        raise bad_request(f"ackmode must be one of {', '.join(ACKMODES)}")
    if count is None or count < 1:
        raise bad_request("count must be a positive integer")
    if encoding not in ("auto", "base64"):
        raise bad_request("encoding must be auto or base64")
    if truncate is not None and truncate < 0:
        raise bad_request("truncate must be a non-negative integer")
    grant_of(request, vhost).check("read", "queue", queue.name)
    queue.check_owner(MANAGEMENT)  # another connection's exclusive queue is locked (405)
    taken = []
    for _ in range(count):
        entry = queue.get()
        if entry is None:
            break
        taken.append(entry)
    out = []
    for i, entry in enumerate(taken):
        remaining = queue.message_count + len(taken) - i - 1  # left when it was taken
        # delivered_properties: x-delivery-count, as AMQP delivers it
        out.append(
            amqp_messages.message_json(entry, delivered_properties(entry), remaining, encoding, truncate)
        )
    if ackmode == "ack_requeue_false":
        for entry in taken:
            queue.ack(entry)
    elif ackmode == "reject_requeue_false":
        queue.discard(taken)
    else:
        queue.requeue(taken, failed=ackmode.startswith("reject"))
    if isinstance(queue, Queue):
        queue.dispatch()
    return web.json_response(out)
