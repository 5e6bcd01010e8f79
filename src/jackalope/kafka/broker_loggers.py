"""The BROKER_LOGGER config resource (KIP-412): the broker's loggers and their levels, described
and changed at run time with DescribeConfigs and IncrementalAlterConfigs, as Kafka's log4j
loggers are.

The loggers are Python's: ``root`` and the broker's own (``jackalope.*``) that exist; levels
use log4j's names (TRACE, DEBUG, INFO, WARN, ERROR, FATAL, OFF).  A change lasts until the
broker stops, as in Kafka (nothing is stored).  SET gives a logger a level, DELETE makes it
inherit its parent's again (not for ``root``); APPEND and SUBTRACT are refused.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Final

from jackalope.kafka.broker_configs import BrokerConfigError

ROOT: Final = "root"
PREFIX: Final = "jackalope"
LEVELS: Final = {"TRACE": 5, "DEBUG": 10, "INFO": 20, "WARN": 30, "ERROR": 40, "FATAL": 50, "OFF": 100}
SET, DELETE = 0, 1


def _name(level: int) -> str:
    """The log4j name of a Python level (the highest log4j level not above it)."""
    found = "TRACE"
    for name, number in LEVELS.items():
        if level >= number:
            found = name
    return found


def _logger(name: str) -> logging.Logger | None:
    if name == ROOT:
        return logging.getLogger()
    existing = logging.Logger.manager.loggerDict.get(name)
    return existing if isinstance(existing, logging.Logger) else None


def loggers() -> dict[str, str]:
    """Every logger there is, by name, with its effective level's log4j name."""
    names = sorted(
        n
        for n, v in logging.Logger.manager.loggerDict.items()
        if isinstance(v, logging.Logger) and (n == PREFIX or n.startswith(PREFIX + "."))
    )
    out = {ROOT: _name(logging.getLogger().getEffectiveLevel())}
    for name in names:
        out[name] = _name(logging.getLogger(name).getEffectiveLevel())
    return out


def alter(ops: Iterable[tuple[str, int, str | None]], *, validate_only: bool) -> None:
    """Apply ``(logger, operation, level)`` changes, all or none (Kafka's messages)."""
    changes: list[tuple[logging.Logger, int]] = []
    for name, op, value in ops:
        if op not in (SET, DELETE):
            verb = {2: "APPEND", 3: "SUBTRACT"}.get(op, str(op))
            raise BrokerConfigError(f"{verb} operation is not allowed for the BROKER_LOGGER resource")
        if op == DELETE and name == ROOT:
            raise BrokerConfigError("Removing the log level of the root logger is not allowed")
        logger = _logger(name)
        if logger is None:
            raise BrokerConfigError(f"Logger {name} does not exist!", invalid_config=True)
        if op == DELETE:
            changes.append((logger, logging.NOTSET))
            continue
        level = (value or "").strip().upper()
        if level not in LEVELS:
            raise BrokerConfigError(
                f"Cannot set the log level of {name} to {value} as it is not a supported log level. "
                f"Valid log4j levels are {', '.join(LEVELS)}",
                invalid_config=True,
            )
        changes.append((logger, LEVELS[level]))
    if validate_only:
        return
    for logger, number in changes:
        logger.setLevel(number)
