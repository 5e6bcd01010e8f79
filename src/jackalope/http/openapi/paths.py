"""The operations of the RabbitMQ-compatible management API, path by path,
as their handlers (``jackalope.http.*``) serve them."""

from __future__ import annotations

from typing import Any, Final

from jackalope.http.openapi.operations import answer, listed, op, query
from jackalope.http.openapi.schemas import BOOLEAN, SCHEMAS, array, ref

_OK = answer(ref("HealthOk"))
_FAILED = answer(ref("HealthFailed"), "The check failed")
_CREATED = answer(None, "Created")
_UPDATED = answer(None, "Updated (or the same again)")
_DELETED = answer(None, "Deleted")
_IF_UNUSED = query("if-unused", BOOLEAN, "refuse (400) if it has consumers or bindings")
_IF_EMPTY = query("if-empty", BOOLEAN, "refuse (400) if it holds messages")


def _put(summary: str, body: str, tag: str, errors: tuple[int, ...] = ()) -> dict[str, Any]:
    return op(summary, {201: _CREATED, 204: _UPDATED}, tag=tag, body=ref(body), errors=errors)


def _list(summary: str, item: str, tag: str, **kw: Any) -> dict[str, Any]:
    return op(summary, {200: answer(listed(SCHEMAS[item]))}, tag=tag, lists=True, **kw)


def _plain_list(summary: str, item: str, tag: str) -> dict[str, Any]:
    return op(summary, {200: answer(array(ref(item)))}, tag=tag)


def _show(summary: str, item: str, tag: str) -> dict[str, Any]:
    return op(summary, {200: answer(ref(item))}, tag=tag)


def _delete(summary: str, tag: str, **kw: Any) -> dict[str, Any]:
    return op(summary, {204: _DELETED}, tag=tag, **kw)


def _policies(kind: str, what: str) -> dict[str, dict[str, Any]]:
    return {
        f"/api/{kind}": {"get": _plain_list(f"Every {what} in the vhosts the user sees", "Policy", kind)},
        f"/api/{kind}/{{vhost}}": {"get": _plain_list(f"A vhost's {what}", "Policy", kind)},
        f"/api/{kind}/{{vhost}}/{{name}}": {
            "get": _show(f"One {what[:-3]}y", "Policy", kind),
            "put": _put(f"Set a {what[:-3]}y", "PolicyBody", kind),
            "delete": _delete(f"Delete a {what[:-3]}y", kind),
        },
    }


def _bindings(kind: str, what: str) -> dict[str, dict[str, Any]]:
    base = f"/api/bindings/{{vhost}}/e/{{source}}/{kind}/{{destination}}"
    return {
        base: {
            "get": _list(f"The bindings from an exchange to a {what}", "Binding", "bindings"),
            "post": op(
                f"Bind a {what} to an exchange",
                {
                    201: {
                        "description": "Bound",
                        "headers": {"Location": {"schema": {"type": "string"}, "description": "the binding"}},
                    }
                },
                tag="bindings",
                body=ref("BindingBody"),
                errors=(403,),
            ),
        },
        base + "/{props}": {
            "get": _show(f"One binding to a {what}", "Binding", "bindings"),
            "delete": _delete(f"Unbind a {what}", "bindings", errors=(403,)),
        },
    }


PATHS: Final[dict[str, dict[str, dict[str, Any]]]] = {
    # -- the broker -------------------------------------------------------------------------
    "/api/openapi.json": {"get": op("This document", {200: answer({"type": "object"})}, tag="broker")},
    "/api/health": {"get": op("The API answers", {200: _OK}, tag="health")},
    "/api/health/checks/alarms": {"get": op("No alarm in effect", {200: _OK, 503: _FAILED}, tag="health")},
    "/api/health/checks/local-alarms": {
        "get": op("No alarm in effect on this node", {200: _OK, 503: _FAILED}, tag="health")
    },
    "/api/health/checks/port-listener/{port}": {
        "get": op("A listener on the port", {200: _OK, 503: _FAILED}, tag="health", errors=(400,))
    },
    "/api/health/checks/virtual-hosts": {"get": op("Every vhost runs", {200: _OK}, tag="health")},
    "/api/aliveness-test/{vhost}": {
        "get": op("Declare, publish to and get from aliveness-test", {200: _OK, 503: _FAILED}, tag="health")
    },
    "/api/overview": {"get": _show("The broker at a glance", "Overview", "broker")},
    "/api/nodes": {"get": _plain_list("The nodes (this one)", "Node", "broker")},
    "/api/nodes/{name}": {"get": _show("One node", "Node", "broker")},
    # -- users, vhosts, permissions, limits ---------------------------------------------------
    "/api/whoami": {"get": _show("The authenticated user", "Whoami", "users")},
    "/api/users": {"get": _plain_list("Every user", "User", "users")},
    "/api/users/{name}": {
        "get": _show("One user", "User", "users"),
        "put": _put("Create or change a user", "UserBody", "users"),
        "delete": _delete("Delete a user", "users"),
    },
    "/api/users/{name}/permissions": {"get": _plain_list("A user's permissions", "Permission", "users")},
    "/api/vhosts": {"get": _plain_list("The vhosts the user sees", "Vhost", "vhosts")},
    "/api/vhosts/{name}": {
        "get": _show("One vhost", "Vhost", "vhosts"),
        "put": _put("Create or change a vhost", "VhostBody", "vhosts"),
        "delete": _delete("Delete a vhost", "vhosts", errors=(400,)),
    },
    "/api/vhosts/{name}/permissions": {"get": _plain_list("A vhost's permissions", "Permission", "vhosts")},
    "/api/vhosts/{vhost}/connections": {"get": _list("A vhost's connections", "Connection", "connections")},
    "/api/vhosts/{vhost}/channels": {"get": _list("A vhost's channels", "Channel", "connections")},
    "/api/permissions": {"get": _plain_list("Every permission", "Permission", "permissions")},
    "/api/permissions/{vhost}/{user}": {
        "get": _show("A user's permission in a vhost", "Permission", "permissions"),
        "put": _put("Set a user's permission in a vhost", "PermissionBody", "permissions"),
        "delete": _delete("Clear a user's permission in a vhost", "permissions"),
    },
    "/api/topic-permissions": {
        "get": op("Topic permissions (none: not supported)", {200: answer(array({}))}, tag="permissions")
    },
    "/api/topic-permissions/{vhost}/{user}": {
        "put": op("Not supported", {}, tag="permissions", errors=(501,)),
        "delete": op("Not supported", {}, tag="permissions", errors=(501,)),
    },
    "/api/vhost-limits": {"get": _plain_list("The vhosts' limits", "VhostLimits", "vhosts")},
    "/api/vhost-limits/{vhost}": {"get": _plain_list("A vhost's limits", "VhostLimits", "vhosts")},
    "/api/vhost-limits/{vhost}/{name}": {
        "put": op(
            "Set a vhost limit (max-connections, max-queues)",
            {204: _UPDATED},
            tag="vhosts",
            body=ref("VhostLimitBody"),
        ),
        "delete": _delete("Clear a vhost limit", "vhosts", errors=(400,)),
    },
    "/api/definitions": {
        "get": _show("Export the definitions", "Definitions", "definitions"),
        "post": op(
            "Import definitions (RabbitMQ's format)",
            {204: answer(None, "Imported")},
            tag="definitions",
            body=ref("Definitions"),
        ),
    },
    **_policies("policies", "policies"),
    **_policies("operator-policies", "operator policies"),
    # -- queues, exchanges, bindings ---------------------------------------------------------
    "/api/queues": {"get": _list("Every queue in the vhosts the user sees", "Queue", "queues")},
    "/api/queues/{vhost}": {"get": _list("A vhost's queues", "Queue", "queues")},
    "/api/queues/{vhost}/{name}": {
        "get": _show("One queue, with its consumers", "Queue", "queues"),
        "put": _put("Declare a queue", "QueueBody", "queues", errors=(403, 405, 503)),
        "delete": _delete("Delete a queue", "queues", errors=(400, 403, 405), query=(_IF_EMPTY, _IF_UNUSED)),
    },
    "/api/queues/{vhost}/{name}/contents": {"delete": _delete("Purge a queue", "queues", errors=(403, 405))},
    "/api/queues/{vhost}/{name}/bindings": {"get": _list("A queue's bindings", "Binding", "queues")},
    "/api/queues/{vhost}/{name}/get": {
        "post": op(
            "Get messages (and requeue, ack or reject them)",
            {200: answer(array(ref("Message")))},
            tag="queues",
            body=ref("GetBody"),
            errors=(403, 405),
        )
    },
    "/api/exchanges": {"get": _list("Every exchange in the vhosts the user sees", "Exchange", "exchanges")},
    "/api/exchanges/{vhost}": {"get": _list("A vhost's exchanges", "Exchange", "exchanges")},
    "/api/exchanges/{vhost}/{name}": {
        "get": _show("One exchange", "Exchange", "exchanges"),
        "put": _put("Declare an exchange", "ExchangeBody", "exchanges", errors=(403,)),
        "delete": _delete("Delete an exchange", "exchanges", errors=(400, 403), query=(_IF_UNUSED,)),
    },
    "/api/exchanges/{vhost}/{name}/bindings/source": {
        "get": _list("The bindings from an exchange", "Binding", "exchanges")
    },
    "/api/exchanges/{vhost}/{name}/bindings/destination": {
        "get": _list("The bindings to an exchange", "Binding", "exchanges")
    },
    "/api/exchanges/{vhost}/{name}/publish": {
        "post": op(
            "Publish one message (amq.default is the default exchange)",
            {200: answer(ref("Routed"))},
            tag="exchanges",
            body=ref("PublishBody"),
            errors=(403, 503),
        )
    },
    "/api/bindings": {"get": _list("Every binding in the vhosts the user sees", "Binding", "bindings")},
    "/api/bindings/{vhost}": {"get": _list("A vhost's bindings", "Binding", "bindings")},
    **_bindings("q", "queue"),
    **_bindings("e", "exchange"),
    # -- connections, channels, consumers ----------------------------------------------------
    "/api/connections": {"get": _list("The connections (of every protocol)", "Connection", "connections")},
    "/api/connections/{name}": {
        "get": _show("One connection", "Connection", "connections"),
        "delete": _delete(
            "Close a connection",
            "connections",
            headers=(
                {"name": "X-Reason", "in": "header", "schema": {"type": "string"}, "description": "why"},
            ),
        ),
    },
    "/api/connections/{name}/channels": {"get": _list("A connection's channels", "Channel", "connections")},
    "/api/channels": {"get": _list("The channels", "Channel", "connections")},
    "/api/channels/{name}": {"get": _show("One channel", "Channel", "connections")},
    "/api/consumers": {"get": _list("The consumers", "Consumer", "connections")},
    "/api/consumers/{vhost}": {"get": _list("A vhost's consumers", "Consumer", "connections")},
}
