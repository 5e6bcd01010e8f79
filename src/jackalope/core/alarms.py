"""Resource alarms: RabbitMQ's memory and disk alarms, as state the front-ends act on.

While an alarm is in effect the broker stops taking messages from publishers (an AMQP
connection that publishes is not read from, a Kafka producer's requests wait) and keeps
serving everyone else, consumers above all, since draining queues is what frees memory and
disk.  The :class:`~jackalope.resources.ResourceMonitor` sets and clears alarms; front-ends
subscribe to hear of every change.  Each change is logged once.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Final

log = logging.getLogger(__name__)

MEMORY: Final = "memory"
DISK: Final = "disk"
RESOURCES: Final = (MEMORY, DISK)

Listener = Callable[[], None]


class Alarms:
    def __init__(self) -> None:
        self._active: set[str] = set()
        self._listeners: list[Listener] = []
        self.details: dict[str, str] = {}  # resource -> what tripped it (for operators)

    @property
    def active(self) -> tuple[str, ...]:
        """The resources in alarm, in a fixed order."""
        return tuple(r for r in RESOURCES if r in self._active)

    @property
    def blocking(self) -> bool:
        """Whether publishers are to be held back now."""
        return bool(self._active)

    def reason(self) -> str:
        """What connection.blocked says: RabbitMQ's "low on memory", "low on disk"."""
        return "low on " + " and ".join(self.active) if self._active else ""

    def set(self, resource: str, on: bool, detail: str = "") -> bool:
        """Raise or clear the alarm of ``resource``; True if that changed anything."""
        if resource not in RESOURCES:
            raise ValueError(f"unknown resource {resource!r}")
        if on == (resource in self._active):
            return False
        because = f" ({detail})" if detail else ""
        if on:
            self._active.add(resource)
            self.details[resource] = detail
            log.warning("%s alarm set: publishers are blocked%s", resource, because)
        else:
            self._active.discard(resource)
            self.details.pop(resource, None)
            log.warning("%s alarm cleared%s", resource, because)
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:  # one broken listener must not keep the others uninformed
                log.exception("alarm listener failed")
        return True

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)
