"""The Kafka protocol front-end: topics, produce, fetch, consumer groups and admin over TCP."""
