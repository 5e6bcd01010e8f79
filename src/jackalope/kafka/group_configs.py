"""Group configs over the config APIs: ConfigResource type GROUP (32) in DescribeConfigs,
AlterConfigs and IncrementalAlterConfigs, translated to
:class:`jackalope.core.share.GroupConfigs` calls (:mod:`jackalope.kafka.handlers.admin`
dispatches here).

As Kafka: DescribeConfigs needs DescribeConfigs on the group, the alters AlterConfigs on it
(GROUP_AUTHORIZATION_FAILED); a group need not exist to have configs; a bad name or value is
INVALID_CONFIG naming it; APPEND and SUBTRACT are refused (no group config is a list); the
configs are described with source GROUP_CONFIG when set, DEFAULT_CONFIG otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum
from typing import Any, Final

from jackalope.core.acls import Operation
from jackalope.core.share import GroupConfigError, GroupConfigs
from jackalope.kafka import authorization
from jackalope.kafka.context import RequestContext
from jackalope.kafka.protocol import ErrorCode, build

GROUP: Final = 32  # ConfigResource.Type.GROUP


class Source(IntEnum):
    DEFAULT_CONFIG = 5
    GROUP_CONFIG = 8  # Kafka's DYNAMIC_GROUP_CONFIG


_TYPES: Final = {"INT": 3, "STRING": 2}  # ConfigEntry.ConfigType


class GroupConfigRefused(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _configs(ctx: RequestContext) -> GroupConfigs:
    share = ctx.broker.share
    if share is None:
        raise GroupConfigRefused(ErrorCode.invalid_request, "group configs are not enabled on this broker")
    return share.configs


def _authorize(ctx: RequestContext, group_id: str, operation: Operation) -> None:
    if not authorization.group(ctx, operation, group_id):
        raise GroupConfigRefused(
            ErrorCode.group_authorization_failed, f"not authorized to {operation.name} of group {group_id}"
        )


def describe(ctx: RequestContext, mod: Any, request: Any, resource: Any) -> tuple[Any, ...]:
    """The DescribeConfigsResourceResult entries of one GROUP resource."""
    group_id = resource.resource_name
    _authorize(ctx, group_id, Operation.DESCRIBE_CONFIGS)
    configs = _configs(ctx)
    keys = list(resource.configuration_keys) if resource.configuration_keys else None
    entries = []
    for value in configs.describe(group_id, keys):
        default = configs.definitions[value.name].default
        source = Source.DEFAULT_CONFIG if value.default else Source.GROUP_CONFIG
        synonyms: tuple[Any, ...] = ()
        if request.include_synonyms:
            pairs = [(value.value, source)]
            if not value.default:
                pairs.append((default, Source.DEFAULT_CONFIG))
            synonyms = tuple(
                build(mod.DescribeConfigsSynonym, name=value.name, value=v, source=s) for v, s in pairs
            )
        entries.append(
            build(
                mod.DescribeConfigsResourceResult,
                name=value.name,
                value=value.value,
                read_only=False,
                config_source=source,
                is_sensitive=False,
                synonyms=synonyms,
                config_type=_TYPES[value.type],
                documentation=None,
            )
        )
    return tuple(entries)


def alter(ctx: RequestContext, resource: Any, validate_only: bool, *, incremental: bool) -> None:
    """AlterConfigs (the overrides become the given set) or IncrementalAlterConfigs of a group."""
    group_id = resource.resource_name
    _authorize(ctx, group_id, Operation.ALTER_CONFIGS)
    configs = _configs(ctx)
    try:
        if incremental:
            set_, delete = _ops(resource.configs)
            configs.alter(group_id, set_, delete, validate_only=validate_only)
        else:
            values = {}
            for c in resource.configs:
                if c.value is None:
                    raise GroupConfigRefused(
                        ErrorCode.invalid_request, f"null value not supported for {c.name}"
                    )
                values[c.name] = c.value
            configs.replace(group_id, values, validate_only=validate_only)
    except GroupConfigError as exc:
        raise GroupConfigRefused(ErrorCode.invalid_config, str(exc)) from None


def _ops(ops: Iterable[Any]) -> tuple[dict[str, str], list[str]]:
    set_: dict[str, str] = {}
    delete: list[str] = []
    for c in ops:
        op = c.config_operation
        if op == 1:  # DELETE
            delete.append(c.name)
            set_.pop(c.name, None)
        elif op == 0:  # SET
            if c.value is None:
                raise GroupConfigRefused(ErrorCode.invalid_request, f"null value not supported for {c.name}")
            set_[c.name] = c.value
        elif op in (2, 3):  # APPEND, SUBTRACT
            verb = "append" if op == 2 else "subtract"
            raise GroupConfigRefused(
                ErrorCode.invalid_config, f"config value {verb} is not allowed for config key: {c.name}"
            )
        else:
            raise GroupConfigRefused(ErrorCode.invalid_request, f"unknown config operation {op} for {c.name}")
    return set_, delete
