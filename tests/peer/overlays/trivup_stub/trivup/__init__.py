"""Stand-in for trivup (which downloads and starts Kafka): the suite runs against Jackalope."""
