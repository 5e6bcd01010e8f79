"""DescribeAcls, CreateAcls and DeleteAcls over the broker's ACL bindings (core/acls.py).

As Kafka's: DescribeAcls needs Describe on the cluster, CreateAcls and DeleteAcls Alter on
it (CLUSTER_AUTHORIZATION_FAILED otherwise); a binding or filter Kafka's controller refuses
is INVALID_REQUEST with Kafka's message.  ACLs on delegation tokens and users are refused
(INVALID_REQUEST): the broker has no delegation tokens.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from jackalope.core.acls import AclBinding, AclFilter, InvalidAcl, Operation
from jackalope.kafka import authorization
from jackalope.kafka.context import RequestContext
from jackalope.kafka.handlers import Api
from jackalope.kafka.protocol import ApiKey, ErrorCode, build, response_module


def _filter(item: Any) -> AclFilter:
    return AclFilter.make(
        item.resource_type_filter,
        item.resource_name_filter,
        item.pattern_type_filter,
        item.principal_filter,
        item.host_filter,
        item.operation,
        item.permission_type,
    )


def _resources(mod: Any, bindings: Iterable[AclBinding]) -> tuple[Any, ...]:
    grouped: dict[tuple[int, str, int], list[Any]] = {}
    for b in bindings:
        key = (int(b.resource_type), b.resource_name, int(b.pattern_type))
        grouped.setdefault(key, []).append(
            build(
                mod.AclDescription,
                principal=b.principal,
                host=b.host,
                operation=int(b.operation),
                permission_type=int(b.permission),
            )
        )
    return tuple(
        build(
            mod.DescribeAclsResource,
            resource_type=rtype,
            resource_name=name,
            pattern_type=ptype,
            acls=tuple(acls),
        )
        for (rtype, name, ptype), acls in grouped.items()
    )


async def handle_describe_acls(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.DESCRIBE_ACLS, ctx.api_version)

    def failed(code: int, message: str) -> Any:
        return build(
            mod.DescribeAclsResponse, throttle_time=0, error_code=code, error_message=message, resources=()
        )

    if not authorization.cluster(ctx, Operation.DESCRIBE):
        return failed(ErrorCode.cluster_authorization_failed, authorization.CLUSTER_DENIED)
    try:
        acl_filter = _filter(request)
    except InvalidAcl as exc:
        return failed(ErrorCode.invalid_request, str(exc))
    found = ctx.broker.core.acls.describe(acl_filter)
    return build(
        mod.DescribeAclsResponse,
        throttle_time=0,
        error_code=ErrorCode.none,
        error_message=None,
        resources=_resources(mod, found),
    )


async def handle_create_acls(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.CREATE_ACLS, ctx.api_version)

    def result(code: int = ErrorCode.none, message: str | None = None) -> Any:
        return build(mod.AclCreationResult, error_code=code, error_message=message)

    if not authorization.cluster(ctx, Operation.ALTER):
        results = [
            result(ErrorCode.cluster_authorization_failed, authorization.CLUSTER_DENIED)
            for _ in request.creations
        ]
        return build(mod.CreateAclsResponse, throttle_time=0, results=tuple(results))
    valid: list[AclBinding] = []
    outcomes: list[Any] = []
    for c in request.creations:
        try:
            binding = AclBinding.make(
                c.resource_type,
                c.resource_name,
                c.resource_pattern_type,
                c.principal,
                c.host,
                c.operation,
                c.permission_type,
            )
        except InvalidAcl as exc:
            outcomes.append(result(ErrorCode.invalid_request, str(exc)))
            continue
        valid.append(binding)
        outcomes.append(result())
    ctx.broker.core.acls.create(valid)
    return build(mod.CreateAclsResponse, throttle_time=0, results=tuple(outcomes))


async def handle_delete_acls(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.DELETE_ACLS, ctx.api_version)

    def filter_result(code: int, message: str | None, matching: tuple[Any, ...] = ()) -> Any:
        return build(
            mod.DeleteAclsFilterResult, error_code=code, error_message=message, matching_acls=matching
        )

    if not authorization.cluster(ctx, Operation.ALTER):
        results = [
            filter_result(ErrorCode.cluster_authorization_failed, authorization.CLUSTER_DENIED)
            for _ in request.filters
        ]
        return build(mod.DeleteAclsResponse, throttle_time=0, filter_results=tuple(results))
    filters: list[AclFilter | InvalidAcl] = []
    for item in request.filters:
        try:
            filters.append(_filter(item))
        except InvalidAcl as exc:
            filters.append(exc)
    removed = iter(ctx.broker.core.acls.delete(f for f in filters if isinstance(f, AclFilter)))
    results = []
    for f in filters:
        if isinstance(f, InvalidAcl):
            results.append(filter_result(ErrorCode.invalid_request, str(f)))
            continue
        matching = tuple(
            build(
                mod.DeleteAclsMatchingAcl,
                error_code=ErrorCode.none,
                error_message=None,
                resource_type=int(b.resource_type),
                resource_name=b.resource_name,
                pattern_type=int(b.pattern_type),
                principal=b.principal,
                host=b.host,
                operation=int(b.operation),
                permission_type=int(b.permission),
            )
            for b in next(removed)
        )
        results.append(filter_result(ErrorCode.none, None, matching))
    return build(mod.DeleteAclsResponse, throttle_time=0, filter_results=tuple(results))


APIS = [
    Api(ApiKey.DESCRIBE_ACLS, 1, 3, handle_describe_acls),
    Api(ApiKey.CREATE_ACLS, 1, 3, handle_create_acls),
    Api(ApiKey.DELETE_ACLS, 1, 3, handle_delete_acls),
]
