"""Jackalope: one broker for RabbitMQ-style queues and Kafka-style logs."""

__version__ = "0.1.0"
