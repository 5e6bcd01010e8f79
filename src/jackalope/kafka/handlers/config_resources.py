"""ListConfigResources (KIP-1142, API 74; v0 was KIP-714's ListClientMetricsResources): the
resources DescribeConfigs can be asked about, by type.

As Kafka 4.1 answers: it needs DescribeConfigs on the cluster (CLUSTER_AUTHORIZATION_FAILED);
v0 lists client-metrics resources only, v1 the types asked for or, asked for none, every type
it supports (topics, brokers, broker loggers, client metrics, groups); a type it does not
support is UNSUPPORTED_VERSION.  Here: the topics (the coordinators' internal topics have no
configs to describe and are left out), broker 0 and its loggers, and the groups that have group
configs; there are no client-metrics resources (KIP-714 subscriptions are not kept).
"""

from __future__ import annotations

from typing import Any

from jackalope.core.acls import Operation
from jackalope.kafka import authorization
from jackalope.kafka.context import RequestContext
from jackalope.kafka.handlers import Api
from jackalope.kafka.handlers.admin import ResourceType
from jackalope.kafka.protocol import ApiKey, ErrorCode, build, response_module

# what v1 lists when asked for no type in particular (v0: client metrics only)
SUPPORTED = (
    ResourceType.TOPIC,
    ResourceType.BROKER,
    ResourceType.BROKER_LOGGER,
    ResourceType.CLIENT_METRICS,
    ResourceType.GROUP,
)


def _groups_with_configs(ctx: RequestContext) -> list[str]:
    """The groups with group configs set (kept by the share coordinator's GroupConfigs)."""
    share = ctx.broker.share
    return share.configs.configured_groups() if share is not None else []


def _names(ctx: RequestContext, kind: ResourceType) -> list[str]:
    if kind == ResourceType.TOPIC:
        return sorted(t.name for t in ctx.broker.topics)
    if kind in (ResourceType.BROKER, ResourceType.BROKER_LOGGER):
        return [str(ctx.broker.node_id)]
    if kind == ResourceType.GROUP:
        return _groups_with_configs(ctx)
    return []  # client metrics: none here


async def handle_list_config_resources(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.LIST_CONFIG_RESOURCES, ctx.api_version)
    if not authorization.cluster(ctx, Operation.DESCRIBE_CONFIGS):
        return build(
            mod.ListConfigResourcesResponse,
            throttle_time=0,
            error_code=ErrorCode.cluster_authorization_failed,
            config_resources=(),
        )
    supported = SUPPORTED if ctx.api_version >= 1 else (ResourceType.CLIENT_METRICS,)
    asked = list(getattr(request, "resource_types", ()) or supported)
    if any(t not in supported for t in asked):
        return build(
            mod.ListConfigResourcesResponse,
            throttle_time=0,
            error_code=ErrorCode.unsupported_version,
            config_resources=(),
        )
    found = []
    for kind in sorted({ResourceType(t) for t in asked}):
        for name in _names(ctx, kind):
            found.append(build(mod.ConfigResource, resource_name=name, resource_type=int(kind)))  # v1+: type
    return build(
        mod.ListConfigResourcesResponse,
        throttle_time=0,
        error_code=ErrorCode.none,
        config_resources=tuple(found),
    )


APIS = [Api(ApiKey.LIST_CONFIG_RESOURCES, 0, 1, handle_list_config_resources)]
