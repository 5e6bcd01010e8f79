"""The storage engine: append-only segmented logs of Kafka RecordBatch v2 on disk.

It knows nothing of exchanges, queues, topics or protocols.  ``Log`` is one log;
``LogManager`` holds the logs of a data directory and drives group commit and retention.
"""

from jackalope.storage.compaction import CompactionResult
from jackalope.storage.config import Durability, LogConfig
from jackalope.storage.errors import (
    CorruptRecordError,
    InvalidProducerEpochError,
    InvalidRecordError,
    InvalidTxnStateError,
    LogClosedError,
    OffsetOutOfRangeError,
    OutOfOrderSequenceError,
    RecordTooLargeError,
    StorageError,
    TransactionCoordinatorFencedError,
)
from jackalope.storage.log import AppendInfo, FileSlice, Log, ReadResult
from jackalope.storage.manager import LogManager
from jackalope.storage.records import Record
from jackalope.storage.transactions import AbortedTxn, CommittedView, OpenTxn, ProducerState

__all__ = [
    "AbortedTxn",
    "AppendInfo",
    "CommittedView",
    "CompactionResult",
    "CorruptRecordError",
    "Durability",
    "FileSlice",
    "InvalidProducerEpochError",
    "InvalidRecordError",
    "InvalidTxnStateError",
    "Log",
    "LogClosedError",
    "LogConfig",
    "LogManager",
    "OffsetOutOfRangeError",
    "OpenTxn",
    "OutOfOrderSequenceError",
    "ProducerState",
    "ReadResult",
    "Record",
    "RecordTooLargeError",
    "StorageError",
    "TransactionCoordinatorFencedError",
]
