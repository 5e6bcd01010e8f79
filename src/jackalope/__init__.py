"""Jackalope: one broker for RabbitMQ-style queues and Kafka-style logs.

``Broker`` runs it inside your process; ``jackalope serve`` runs it as a server.
"""

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Broker", "__version__"]

if TYPE_CHECKING:
    from jackalope.embedded import Broker


def __getattr__(name: str) -> Any:
    # Imported lazily so that `import jackalope.storage` stays free of the server's dependencies.
    if name == "Broker":
        from jackalope.embedded import Broker

        return Broker
    raise AttributeError(name)
