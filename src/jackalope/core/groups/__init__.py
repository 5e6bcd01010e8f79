"""Consumer groups: Kafka's classic group protocol and committed offsets, protocol-free.

:class:`GroupCoordinator` is the entry point; :mod:`.types` holds the values its calls take
and return, :mod:`.store` the format of its internal log.
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
