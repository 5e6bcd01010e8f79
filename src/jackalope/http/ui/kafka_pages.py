"""The Kafka pages: topics, one topic with its message browser, one record as AMQP and as
Kafka see it side by side, consumer groups and one group with its offsets, lag and reset."""

from __future__ import annotations

from aiohttp import web

from jackalope.http.ui import tables
from jackalope.http.ui.render import api_get, list_page, q, render, ui_page

routes = web.RouteTableDef()


@routes.get("/topics")
@ui_page
async def topics(request: web.Request) -> web.Response:
    return await list_page(request, "topics.html", "Topics", tables.TOPICS)


@routes.get("/topics/{topic}")
@ui_page
async def topic(request: web.Request) -> web.Response:
    name = request.match_info["topic"]
    api = f"/api/kafka/topics/{q(name)}"
    data = await api_get(request, api)
    partitions = [(str(p["partition"]), str(p["partition"])) for p in data.get("partitions", [])]
    return render(
        request,
        "topic.html",
        title=f"Topic {name}",
        name=name,
        api=api,
        data=data,
        partitions=partitions,
        partitions_table=tables.PARTITIONS.at(api),
        records_table=tables.RECORDS.at(topic=name),
    )


@routes.get(r"/topics/{topic}/{partition:\d+}/{offset:\d+}")
@ui_page
async def record(request: web.Request) -> web.Response:
    name = request.match_info["topic"]
    partition, offset = int(request.match_info["partition"]), int(request.match_info["offset"])
    data = await api_get(request, f"/api/kafka/topics/{q(name)}/partitions/{partition}/records/{offset}")
    return render(
        request,
        "record.html",
        title=f"Record {offset} of {name}-{partition}",
        topic=name,
        partition=partition,
        offset=offset,
        kafka=data.get("kafka", {}),
        amqp=data.get("amqp", {}),
    )


@routes.get("/groups")
@ui_page
async def groups(request: web.Request) -> web.Response:
    return await list_page(request, "list.html", "Consumer groups", tables.GROUPS)


@routes.get("/groups/{group}")
@ui_page
async def group(request: web.Request) -> web.Response:
    name = request.match_info["group"]
    api = f"/api/kafka/groups/{q(name)}"
    data = await api_get(request, api)
    return render(
        request,
        "group.html",
        title=f"Consumer group {name}",
        name=name,
        api=api,
        data=data,
        tables=tables,
        members_table=tables.GROUP_MEMBERS.at(api),
        offsets_table=tables.GROUP_OFFSETS.at(api),
    )
