"""The broker core: what the broker holds, with no protocol inside.

Virtual hosts with their exchanges, queues and bindings (RabbitMQ semantics), and the named
logs of the storage engine.  Front-ends (HTTP, AMQP, and Kafka next) translate requests into
calls on :class:`BrokerCore` and hold no broker state of their own.
"""

from jackalope.core.broker import BrokerCore

__all__ = ["BrokerCore"]
