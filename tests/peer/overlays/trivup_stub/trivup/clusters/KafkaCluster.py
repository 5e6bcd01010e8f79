"""trivup's KafkaCluster, refused: the runner gives the suite running brokers instead."""

from typing import Any


class KafkaCluster:
    def __init__(self, **conf: Any) -> None:
        raise RuntimeError("trivup is not used: the brokers are Jackalope's (BROKERS is set)")
