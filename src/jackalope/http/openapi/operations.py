"""How operations are written in the document: their parameters, bodies and answers, with the
parts every operation shares (basic auth's 401, the error object, RabbitMQ's list
parameters) added in one place."""

from __future__ import annotations

import copy
import re
from typing import Any, Final

from jackalope.http.openapi.schemas import INTEGER, STRING, Schema, array, ref

ERRORS: Final = {
    400: "Bad request: a malformed body or parameter, or a refused value",
    401: "No or wrong credentials, or a user without the tag the operation needs",
    403: "Refused by the user's permissions in the vhost",
    404: "No such object",
    405: "The object is locked (another connection's exclusive queue)",
    409: "Conflicts with the object's state",
    413: "Too large",
    415: "The body's media type is not JSON",
    416: "The offset is outside the log",
    501: "Not implemented by Jackalope",
    503: "Storage failed",
}
JSON: Final = "application/json"

# Path parameters by name: what each is.  Names in paths are percent-encoded (``%2F`` for "/").
PATH_PARAMETERS: Final[dict[str, dict[str, Any]]] = {
    "vhost": {"schema": STRING, "description": 'a vhost\'s name ("/" is %2F)', "example": "/"},
    "name": {"schema": STRING, "description": "the object's name"},
    "user": {"schema": STRING, "description": "a user's name"},
    "source": {"schema": STRING, "description": "the source exchange's name"},
    "destination": {"schema": STRING, "description": "the destination queue's or exchange's name"},
    "props": {"schema": STRING, "description": "the binding's properties_key, as the lists give it"},
    "port": {"schema": INTEGER, "description": "a TCP port"},
    "topic": {"schema": STRING, "description": "a Kafka topic's name"},
    "partition": {"schema": INTEGER, "description": "a partition's number"},
    "offset": {"schema": INTEGER, "description": "a record's offset"},
    "group": {"schema": STRING, "description": "a consumer group's id"},
}
# RabbitMQ's list parameters (jackalope.http.listing).
LIST_PARAMETERS: Final[list[dict[str, Any]]] = [
    {
        "name": "page",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1},
        "description": "answer a page",
    },
    {
        "name": "page_size",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100},
    },
    {"name": "name", "in": "query", "schema": STRING, "description": "keep objects whose name has it"},
    {"name": "use_regex", "in": "query", "schema": {"type": "boolean"}, "description": "name is a regex"},
    {"name": "sort", "in": "query", "schema": STRING, "description": "a dotted path to sort by"},
    {"name": "sort_reverse", "in": "query", "schema": {"type": "boolean"}},
    {"name": "columns", "in": "query", "schema": STRING, "description": "comma-separated dotted paths"},
]
_PARAM = re.compile(r"{(\w+)}")


def error(status: int) -> dict[str, Any]:
    return {"$ref": f"#/components/responses/E{status}"}


def error_responses() -> dict[str, Any]:
    return {
        f"E{status}": {"description": text, "content": {JSON: {"schema": ref("Error")}}}
        for status, text in ERRORS.items()
    }


def answer(schema: Schema | None, description: str = "OK") -> dict[str, Any]:
    """A response with a JSON body of ``schema``, or with no body (``None``)."""
    if schema is None:
        return {"description": description}
    return {"description": description, "content": {JSON: {"schema": schema}}}


def partial(schema: Schema) -> Schema:
    """``schema`` with nothing required, at any depth: an object cut down by ``columns=``
    (its ``$ref``s must lead to nothing required)."""
    out = copy.deepcopy(schema)

    def strip(node: Any) -> None:
        if isinstance(node, dict):
            node.pop("required", None)
            for value in node.values():
                strip(value)
        elif isinstance(node, list):
            for value in node:
                strip(value)

    strip(out)
    return out


def listed(item: Schema) -> Schema:
    """A list answer with RabbitMQ's list parameters: the list, or with ``page`` a page of it;
    ``item`` is the objects' schema itself (not a reference: with ``columns=`` nothing is
    required)."""
    items = array(partial(item))
    page = {"allOf": [ref("Page"), {"type": "object", "properties": {"items": items}}]}
    return {"anyOf": [items, page]}


def op(
    summary: str,
    responses: dict[int, dict[str, Any]],
    *,
    tag: str,
    errors: tuple[int, ...] = (),
    body: Schema | None = None,
    query: tuple[dict[str, Any], ...] = (),
    headers: tuple[dict[str, Any], ...] = (),
    lists: bool = False,
) -> dict[str, Any]:
    """One operation; :func:`complete` adds what its path implies."""
    operation: dict[str, Any] = {
        "summary": summary,
        "tags": [tag],
        "responses": {str(status): response for status, response in responses.items()},
        "parameters": [*query, *headers],
        "x-errors": list(errors),
    }
    if body is not None:
        operation["requestBody"] = {"required": False, "content": {JSON: {"schema": body}}}
    if lists:
        operation["parameters"].extend(LIST_PARAMETERS)
    return operation


def query(name: str, schema: Schema, description: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "in": "query", "schema": schema}
    if description:
        out["description"] = description
    return out


def complete(path: str, operation: dict[str, Any]) -> dict[str, Any]:
    """The operation with its path parameters and the errors it can answer: 401 always, 404
    with path parameters, 400 with a body, list parameters or its own query parameters."""
    out = copy.deepcopy(operation)
    names = _PARAM.findall(path)
    out["parameters"] = [
        {"name": n, "in": "path", "required": True, **PATH_PARAMETERS[n]} for n in names
    ] + out["parameters"]
    statuses = {401, *out.pop("x-errors")}
    if names:
        statuses.add(404)
    if "requestBody" in out or any(p["in"] == "query" for p in out["parameters"]):
        statuses.add(400)
    for status in sorted(statuses):
        out["responses"].setdefault(str(status), error(status))
    if not out["parameters"]:
        del out["parameters"]
    return out
