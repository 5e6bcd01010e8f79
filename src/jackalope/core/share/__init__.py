"""Kafka share groups (KIP-932), protocol-free: membership and group configs here
(:mod:`.group`, :mod:`.assignor`, :mod:`.coordinator`, :mod:`.configs`); the share-partition
delivery state lives beside them.

The delivery side uses :class:`ShareCoordinator`: ``exists(group)``,
``member_error(group, member)`` (None, GROUP_ID_NOT_FOUND or UNKNOWN_MEMBER_ID, as
:class:`~jackalope.core.groups.GroupError`), ``assignment(group, member)`` (a frozenset of
(topic, partition)), ``config(group)`` (a :class:`ShareGroupConfig`) and the callback lists
``on_member_left`` (group, member), ``on_group_deleted`` (group), ``on_config_changed`` (group).
"""

from jackalope.core.share.configs import GroupConfigError, GroupConfigs, ShareGroupConfig
from jackalope.core.share.coordinator import PROTOCOL_TYPE, ShareCoordinator
from jackalope.core.share.group import (
    ShareGroup,
    ShareGroupState,
    ShareHeartbeat,
    ShareHeartbeatResult,
    ShareMember,
)

__all__ = [
    "PROTOCOL_TYPE",
    "GroupConfigError",
    "GroupConfigs",
    "ShareCoordinator",
    "ShareGroup",
    "ShareGroupConfig",
    "ShareGroupState",
    "ShareHeartbeat",
    "ShareHeartbeatResult",
    "ShareMember",
]
