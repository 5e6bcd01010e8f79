"""Errors the storage engine raises."""


class StorageError(Exception):
    """An I/O failure.  A failed write (a full disk) loses only the unflushed tail and the log
    goes on; a failed fsync makes the log refuse writes until it is reopened."""


class CorruptRecordError(StorageError):
    """Bytes that are not a valid record batch: bad magic, bad CRC, truncated or malformed."""


class InvalidRecordError(CorruptRecordError):
    """Well-formed batches holding records the log refuses (Kafka's INVALID_RECORD): a keyless
    record for a compacted log, say.  ``record_errors`` are ``(index, message)`` of each refused
    record, the index counted from the batch's first record."""

    def __init__(self, message: str, record_errors: list[tuple[int, str]] | None = None) -> None:
        super().__init__(message)
        self.record_errors = record_errors or []


class OffsetOutOfRangeError(StorageError):
    """A read asked for an offset below the log start or past the log end."""

    def __init__(self, offset: int, start: int, end: int) -> None:
        super().__init__(f"offset {offset} is outside the log [{start}, {end})")
        self.offset = offset
        self.start = start
        self.end = end


class LogClosedError(StorageError):
    """The log was closed or failed."""


class RecordTooLargeError(StorageError):
    """A record batch is larger than the log's ``max_message_bytes``."""


class InvalidProducerEpochError(StorageError):
    """An idempotent producer wrote with an epoch older than one the log has seen (it was fenced)."""


class OutOfOrderSequenceError(StorageError):
    """An idempotent producer's batch does not continue its sequence: a batch went missing."""


class InvalidTxnStateError(StorageError):
    """A producer whose transaction is open on the log wrote a non-transactional batch."""


class TransactionCoordinatorFencedError(StorageError):
    """A transaction marker came with a coordinator epoch older than one the log has seen."""
