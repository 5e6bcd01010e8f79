"""ApiVersions: which APIs and versions this broker speaks."""

from __future__ import annotations

from typing import Any

from jackalope.kafka.context import RequestContext
from jackalope.kafka.handlers import Api
from jackalope.kafka.protocol import ApiKey


async def handle_api_versions(ctx: RequestContext, request: Any) -> Any:
    from jackalope.kafka.registry import api_versions_response  # the registry imports this module

    return api_versions_response(ctx.api_version)


APIS = [Api(ApiKey.API_VERSIONS, 0, 4, handle_api_versions, before_auth=True)]
