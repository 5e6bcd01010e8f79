"""Every API the Kafka front-end serves, with its version range, collected from the handlers."""

from __future__ import annotations

from typing import Any

from jackalope.kafka import request_guards
from jackalope.kafka.handlers import (
    Api,
    acls,
    admin,
    api_versions,
    cluster,
    config_resources,
    consumer_groups,
    fetch,
    groups,
    metadata,
    offset_delete,
    offsets,
    partitions,
    produce,
    sasl,
    share_fetch,
    share_groups,
    share_offsets,
    transactions,
)
from jackalope.kafka.protocol import ApiKey, ErrorCode, build, response_module

APIS: dict[int, Api] = {
    api.key: request_guards.guarded(api)
    for module in (
        api_versions,
        metadata,
        produce,
        fetch,
        offsets,
        groups,
        consumer_groups,
        admin,
        sasl,
        partitions,
        offset_delete,
        transactions,
        acls,
        cluster,
        config_resources,
        share_groups,
        share_fetch,
        share_offsets,
    )
    for api in module.APIS
}


def api_versions_response(version: int, error_code: int = 0) -> Any:
    mod = response_module(ApiKey.API_VERSIONS, version)
    keys = tuple(
        build(mod.ApiVersion, api_key=a.key, min_version=a.min_version, max_version=a.max_version)
        for a in sorted(APIS.values(), key=lambda a: a.key)
    )
    return build(mod.ApiVersionsResponse, error_code=error_code, api_keys=keys, throttle_time=0)


def api_versions_fallback() -> Any:
    """KIP-511: the v0 response to an ApiVersions request of a version newer than ours."""
    return api_versions_response(0, ErrorCode.unsupported_version)
