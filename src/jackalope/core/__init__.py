"""The broker core: what the broker holds, with no protocol inside.

Front-ends (HTTP today; AMQP and Kafka next) translate requests into calls on
:class:`BrokerCore` and hold no broker state of their own.
"""

from jackalope.core.broker import BrokerCore, LogNotFound

__all__ = ["BrokerCore", "LogNotFound"]
