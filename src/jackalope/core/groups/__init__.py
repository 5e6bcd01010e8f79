"""Consumer groups: Kafka's classic group protocol, the consumer group protocol (KIP-848) and
committed offsets, protocol-free.

:class:`GroupCoordinator` (:mod:`.coordinator`, the membership state machine) is the entry
point; :mod:`.types` holds the values its calls take and return.  Behind it: :mod:`.group` the
in-memory state of a group and its members, :mod:`.offsets` committed offsets (and deleting
and expiring groups with them), :mod:`.offsets_log` reading and writing the internal log, and
:mod:`.store` the format of its records.  The consumer group protocol: :mod:`.consumer_group`
(one group's state machine), :mod:`.assignors` (uniform, range) and :mod:`.consumer_protocol`
(its timers and persistence); the online migration between the two protocols:
:mod:`.migration` (policy, upgrade, downgrade) and :mod:`.classic_members` (classic members
of a consumer group).
"""

from jackalope.core.groups.coordinator import GroupCoordinator
from jackalope.core.groups.types import (
    GroupDescription,
    GroupError,
    GroupListing,
    GroupState,
    JoinResult,
    MemberDescription,
    MemberMetadata,
    OffsetAndMetadata,
    SyncResult,
    TopicPartition,
)

__all__ = [
    "GroupCoordinator",
    "GroupDescription",
    "GroupError",
    "GroupListing",
    "GroupState",
    "JoinResult",
    "MemberDescription",
    "MemberMetadata",
    "OffsetAndMetadata",
    "SyncResult",
    "TopicPartition",
]
