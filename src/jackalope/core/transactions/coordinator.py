"""The transaction coordinator: Kafka's transactions (KIP-98), without the protocol.

Per transactional id it keeps a producer id and epoch, a timeout and the transaction in
progress, moving through Kafka's states::

    Empty --AddPartitions/AddOffsets--> Ongoing --EndTxn(commit)--> PrepareCommit --> CompleteCommit
                                          |  ^          (markers, offsets)                 |
                                          |  +---------------AddPartitions-----------------+
                                          +--EndTxn(abort), timeout, fence--> PrepareAbort --> CompleteAbort

* **Durability.**  Every change is written to the internal log (``__transaction_state``) and
  awaited until durable before the memory changes and the caller is answered.  A transaction
  is decided once its Prepare* record is durable; the markers (COMMIT/ABORT control batches,
  durable in every partition), the group offsets (materialized or dropped) and the Complete*
  record follow.  At start the log is replayed: a transaction found in Prepare* is completed
  again (markers written again, harmless), one found Ongoing is left to its timeout or to the
  next InitProducerId of its id, as Kafka does.
* **Fencing.**  InitProducerId bumps the epoch (a new producer id once the epoch is exhausted);
  an Ongoing transaction of the id is first aborted with a bumped epoch, so the markers fence
  the old producer everywhere.  Requests with an older epoch get PRODUCER_FENCED.
* **Timeouts.**  One periodic timer aborts transactions open longer than their timeout (with an
  epoch bump: the producer is fenced), retries completions that failed (a storage error), and
  forgets ids unused for ``id_expiration_ms``.
* **One change at a time.**  While a change of an id is being written, other requests for it
  get CONCURRENT_TRANSACTIONS (retriable), as Kafka's pending state does.

Everything runs on the broker's event loop.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Final

from jackalope.core.groups.types import GroupError, OffsetAndMetadata, TopicPartition
from jackalope.core.producer_ids import ProducerIds
from jackalope.core.transactions.markers import MarkerWriter, TxnOffsetSink
from jackalope.core.transactions.state_log import TransactionLog
from jackalope.core.transactions.types import (
    COMPLETE,
    MAX_EPOCH,
    NO_PRODUCER_EPOCH,
    NO_PRODUCER_ID,
    PREPARED,
    ProducerIdAndEpoch,
    TxnDescription,
    TxnError,
    TxnListing,
    TxnMetadata,
    TxnState,
    epoch_exhausted,
)
from jackalope.storage import LogManager, StorageError

log = logging.getLogger(__name__)

DAY_MS: Final = 24 * 3600 * 1000

Ongoing: Final = TxnState.ONGOING


def now_ms() -> int:
    return int(time.time() * 1000)


class TransactionCoordinator:
    """Every transactional id of one broker."""

    def __init__(
        self,
        logs: LogManager,
        producer_ids: ProducerIds,
        write_marker: MarkerWriter,
        *,
        groups: TxnOffsetSink | None = None,
        partition_exists: Callable[[str, int], bool] | None = None,
        max_timeout_ms: int = 900_000,
        abort_interval_ms: int = 10_000,
        id_expiration_ms: int = 7 * DAY_MS,
        log_name: str = "__transaction_state",
        offsets_topic: str = "__consumer_offsets",
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.logs = logs
        self.producer_ids = producer_ids
        self.write_marker = write_marker
        self.groups = groups
        self.partition_exists = partition_exists
        self.max_timeout_ms = max_timeout_ms
        self.abort_interval_ms = abort_interval_ms
        self.id_expiration_ms = id_expiration_ms
        self.offsets_topic = offsets_topic
        self.clock = clock
        self._log = TransactionLog(logs, log_name)
        self._txns: dict[str, TxnMetadata] = {}
        self._by_pid: dict[int, TxnMetadata] = {}
        self._busy: set[str] = set()  # ids with a change being written
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._tick_task: asyncio.Task[None] | None = None
        self._loaded = False
        self._closed = False

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        return self._loaded

    async def load(self) -> None:
        """Replay the internal log, complete the transactions found prepared, start the timer.

        Until this finishes every call answers ``COORDINATOR_LOAD_IN_PROGRESS``.
        """
        self._loop = asyncio.get_running_loop()
        self._txns = await self._log.load()
        for txn in self._txns.values():
            self._by_pid[txn.producer_id] = txn
            if txn.state is Ongoing and self.groups is not None:
                for group_id, offsets in txn.offsets.items():
                    self.groups.add_pending_transaction(group_id, txn.producer_id, offsets)
        prepared = [t for t in self._txns.values() if t.state in PREPARED]
        for txn in prepared:
            self._busy.add(txn.transactional_id)
            try:
                await self._complete(txn)
            except StorageError as exc:
                log.error("completing transaction %s: %s", txn.transactional_id, exc)
            finally:
                self._busy.discard(txn.transactional_id)
        self._loaded = True
        self._schedule_tick()
        log.debug("transaction coordinator loaded %d ids, completed %d", len(self._txns), len(prepared))

    def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._tick_task is not None:
            self._tick_task.cancel()
            self._tick_task = None

    def _status(self) -> TxnError | None:
        if self._closed:
            return TxnError.NOT_COORDINATOR
        if not self._loaded:
            return TxnError.COORDINATOR_LOAD_IN_PROGRESS
        return None

    # -- writing -------------------------------------------------------------------------------

    async def _write(self, new: TxnMetadata) -> None:
        """Make ``new`` durable, then current (raises ``StorageError``, leaving memory as it was)."""
        new.updated_ms = self.clock()
        await self._log.save(new)
        old = self._txns.get(new.transactional_id)
        if old is not None and self._by_pid.get(old.producer_id) is old:
            del self._by_pid[old.producer_id]
        self._txns[new.transactional_id] = new
        self._by_pid[new.producer_id] = new

    async def _complete(self, txn: TxnMetadata) -> None:
        """Finish a prepared transaction: markers, group offsets, then Complete* (the caller
        holds the id busy).  Raises ``StorageError``; the transaction then stays prepared."""
        commit = txn.state is TxnState.PREPARE_COMMIT
        await asyncio.gather(
            *(
                self.write_marker(tp, txn.producer_id, txn.producer_epoch, commit)
                for tp in sorted(txn.partitions)
            )
        )
        if self.groups is not None:
            for group_id in sorted(txn.groups | txn.offsets.keys()):
                offsets = txn.offsets.get(group_id)
                if commit and offsets:
                    error = await self.groups.commit_transactional_offsets(group_id, offsets)
                    if error is not None:
                        raise StorageError(f"committing the offsets of group {group_id}: {error}")
                self.groups.end_pending_transaction(group_id, txn.producer_id)
        done = txn.copy()
        done.state = TxnState.COMPLETE_COMMIT if commit else TxnState.COMPLETE_ABORT
        done.partitions.clear()
        done.groups.clear()
        done.offsets.clear()
        done.start_ms = -1
        await self._write(done)

    async def _prepare_and_complete(self, txn: TxnMetadata, commit: bool, *, fence: bool) -> TxnError | None:
        """Ongoing -> Prepare* (durable: the decision) -> markers -> Complete* (the caller holds
        the id busy).  ``fence`` bumps the epoch first, so the markers fence the producer."""
        prepared = txn.copy()
        prepared.state = TxnState.PREPARE_COMMIT if commit else TxnState.PREPARE_ABORT
        if fence and prepared.producer_epoch < MAX_EPOCH:
            prepared.producer_epoch += 1
            prepared.last_epoch = NO_PRODUCER_EPOCH  # the old epoch may not come back (Kafka's fence)
        try:
            await self._write(prepared)
        except StorageError as exc:
            log.error("preparing transaction %s: %s", txn.transactional_id, exc)
            return TxnError.NOT_COORDINATOR
        try:
            await self._complete(prepared)
        except StorageError as exc:  # decided: the timer completes it later
            log.error("completing transaction %s: %s", txn.transactional_id, exc)
        return None

    # -- InitProducerId --------------------------------------------------------------------------

    async def init_producer_id(
        self,
        transactional_id: str,
        timeout_ms: int,
        producer_id: int = NO_PRODUCER_ID,
        producer_epoch: int = NO_PRODUCER_EPOCH,
    ) -> tuple[TxnError | None, ProducerIdAndEpoch]:
        """InitProducerId of a transactional producer: the id's producer id and a bumped epoch.

        An Ongoing transaction of the id is aborted first (with a bumped epoch: the previous
        producer is fenced).  ``producer_id``/``producer_epoch`` (KIP-360, v3+) are those the
        producer had: a retry with the epoch before the latest bump gets the current one back.
        """
        none = ProducerIdAndEpoch(NO_PRODUCER_ID, NO_PRODUCER_EPOCH)
        error = self._status()
        if error is None and not transactional_id:
            error = TxnError.INVALID_REQUEST
        if error is None and not 0 < timeout_ms <= self.max_timeout_ms:
            error = TxnError.INVALID_TRANSACTION_TIMEOUT
        if error is not None:
            return error, none
        if transactional_id in self._busy:
            return TxnError.CONCURRENT_TRANSACTIONS, none
        txn = self._txns.get(transactional_id)
        self._busy.add(transactional_id)
        try:
            if txn is None:
                txn = TxnMetadata(
                    transactional_id, self.producer_ids.allocate(), NO_PRODUCER_EPOCH, timeout_ms
                )
            if producer_id != NO_PRODUCER_ID and not (
                txn.producer_epoch == NO_PRODUCER_EPOCH
                or producer_id == txn.producer_id
                or (producer_id == txn.previous_producer_id and epoch_exhausted(producer_epoch))
            ):
                return TxnError.PRODUCER_FENCED, none
            if txn.state in PREPARED:
                try:
                    await self._complete(txn)
                except StorageError as exc:
                    log.error("completing transaction %s: %s", transactional_id, exc)
                    return TxnError.CONCURRENT_TRANSACTIONS, none
                txn = self._txns[transactional_id]
            elif txn.state is Ongoing:
                error = await self._prepare_and_complete(txn, commit=False, fence=True)
                if error is not None:
                    return error, none
                txn = self._txns[transactional_id]
                if txn.state is not TxnState.COMPLETE_ABORT:
                    return TxnError.CONCURRENT_TRANSACTIONS, none  # the timer finishes the abort
            current = ProducerIdAndEpoch(txn.producer_id, txn.producer_epoch)
            if (
                NO_PRODUCER_EPOCH not in (producer_epoch, txn.producer_epoch)
                and producer_id != NO_PRODUCER_ID
            ):
                if producer_id != txn.producer_id:
                    return None, current  # a retry of the bump that gave the id a new producer id
                if producer_epoch == txn.last_epoch:
                    return None, current  # a retry of a bump that succeeded
                if producer_epoch != txn.producer_epoch:
                    return TxnError.PRODUCER_FENCED, none
            new = txn.copy()
            if epoch_exhausted(txn.producer_epoch):
                new.previous_producer_id = txn.producer_id
                new.producer_id = self.producer_ids.allocate()
                new.producer_epoch = 0
                new.last_epoch = NO_PRODUCER_EPOCH
            else:
                new.last_epoch = txn.producer_epoch
                new.producer_epoch = txn.producer_epoch + 1
            new.timeout_ms = timeout_ms
            new.state = TxnState.EMPTY
            new.partitions.clear()
            new.groups.clear()
            new.offsets.clear()
            new.start_ms = -1
            try:
                await self._write(new)
            except StorageError as exc:
                log.error("storing producer id of %s: %s", transactional_id, exc)
                return TxnError.NOT_COORDINATOR, none
            return None, ProducerIdAndEpoch(new.producer_id, new.producer_epoch)
        finally:
            self._busy.discard(transactional_id)

    # -- adding to the transaction ---------------------------------------------------------------

    def _check_producer(
        self, transactional_id: str, producer_id: int, producer_epoch: int
    ) -> tuple[TxnError | None, TxnMetadata | None]:
        error = self._status()
        if error is not None:
            return error, None
        txn = self._txns.get(transactional_id)
        if txn is None or txn.producer_id != producer_id:
            return TxnError.INVALID_PRODUCER_ID_MAPPING, None
        if producer_epoch != txn.producer_epoch:
            return TxnError.PRODUCER_FENCED, None
        if transactional_id in self._busy or txn.state in PREPARED:
            return TxnError.CONCURRENT_TRANSACTIONS, None
        return None, txn

    async def _add(
        self, txn: TxnMetadata, partitions: Iterable[TopicPartition] = (), group_id: str | None = None
    ) -> TxnError | None:
        new = txn.copy()
        if txn.state is not Ongoing:
            new.state = Ongoing
            new.start_ms = self.clock()
        new.partitions.update(partitions)
        if group_id is not None:
            new.groups.add(group_id)
        if txn.state is Ongoing and new.partitions == txn.partitions and new.groups == txn.groups:
            return None  # nothing new: nothing to write
        self._busy.add(txn.transactional_id)
        try:
            await self._write(new)
        except StorageError as exc:
            log.error("adding to transaction %s: %s", txn.transactional_id, exc)
            return TxnError.NOT_COORDINATOR
        finally:
            self._busy.discard(txn.transactional_id)
        return None

    async def add_partitions(
        self,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        partitions: Iterable[TopicPartition],
    ) -> dict[TopicPartition, TxnError | None]:
        """AddPartitionsToTxn: the partitions join the Ongoing transaction (it starts if none is).

        If any partition does not exist it gets UNKNOWN_TOPIC_OR_PARTITION and the others
        OPERATION_NOT_ATTEMPTED; nothing is added.
        """
        wanted = list(dict.fromkeys(partitions))
        if self.partition_exists is not None:
            unknown = {tp for tp in wanted if not self.partition_exists(*tp)}
            if unknown:
                return {
                    tp: TxnError.UNKNOWN_TOPIC_OR_PARTITION
                    if tp in unknown
                    else TxnError.OPERATION_NOT_ATTEMPTED
                    for tp in wanted
                }
        error, txn = self._check_producer(transactional_id, producer_id, producer_epoch)
        if txn is not None:
            error = await self._add(txn, wanted)
        return dict.fromkeys(wanted, error)

    def verify_partitions(
        self,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        partitions: Iterable[TopicPartition],
    ) -> dict[TopicPartition, TxnError | None]:
        """AddPartitionsToTxn with verify_only (KIP-890): are the partitions in the transaction?"""
        wanted = list(dict.fromkeys(partitions))
        error = self._status()
        txn = self._txns.get(transactional_id)
        if error is None and (txn is None or txn.producer_id != producer_id):
            error = TxnError.INVALID_PRODUCER_ID_MAPPING
        elif error is None and txn is not None and producer_epoch != txn.producer_epoch:
            error = TxnError.PRODUCER_FENCED
        if error is not None or txn is None:
            return dict.fromkeys(wanted, error)
        ongoing = txn.state is Ongoing
        return {tp: None if ongoing and tp in txn.partitions else TxnError.INVALID_TXN_STATE for tp in wanted}

    async def add_offsets(
        self, transactional_id: str, producer_id: int, producer_epoch: int, group_id: str
    ) -> TxnError | None:
        """AddOffsetsToTxn: the group's offsets will be committed with the transaction."""
        error, txn = self._check_producer(transactional_id, producer_id, producer_epoch)
        if txn is None:
            return error
        return await self._add(txn, group_id=group_id)

    async def commit_offsets(
        self,
        transactional_id: str,
        group_id: str,
        producer_id: int,
        producer_epoch: int,
        offsets: Mapping[TopicPartition, OffsetAndMetadata],
        *,
        generation_id: int = -1,
        member_id: str = "",
        group_instance_id: str | None = None,
    ) -> dict[TopicPartition, TxnError | None]:
        """TxnOffsetCommit: offsets kept (durably) with the transaction, visible to OffsetFetch
        only once it commits; until then OffsetFetch with require_stable sees them as pending."""
        error, txn = self._check_producer(transactional_id, producer_id, producer_epoch)
        if error is TxnError.PRODUCER_FENCED:
            error = TxnError.INVALID_PRODUCER_EPOCH  # TxnOffsetCommit's name for it
        if error is None and txn is not None and (txn.state is not Ongoing or group_id not in txn.groups):
            error = TxnError.INVALID_TXN_STATE  # no AddOffsetsToTxn for this group first
        if error is None and self.groups is not None:
            group_error = self.groups.validate_transactional_commit(
                group_id, generation_id, member_id, group_instance_id
            )
            if group_error is not None:
                error = _group_error(group_error)
        if error is not None or txn is None:
            return dict.fromkeys(offsets, error)
        results: dict[TopicPartition, TxnError | None] = {}
        accepted: dict[TopicPartition, OffsetAndMetadata] = {}
        max_metadata = self.groups.max_metadata_bytes if self.groups is not None else 4096
        for tp, om in offsets.items():
            if self.partition_exists is not None and not self.partition_exists(*tp):
                results[tp] = TxnError.UNKNOWN_TOPIC_OR_PARTITION
            elif len(om.metadata.encode()) > max_metadata:
                results[tp] = TxnError.OFFSET_METADATA_TOO_LARGE
            else:
                results[tp] = None
                accepted[tp] = OffsetAndMetadata(*om)
        if not accepted:
            return results
        new = txn.copy()
        new.offsets.setdefault(group_id, {}).update(accepted)
        self._busy.add(transactional_id)
        try:
            await self._write(new)
        except StorageError as exc:
            log.error("storing transactional offsets of %s: %s", transactional_id, exc)
            return {**results, **dict.fromkeys(accepted, TxnError.NOT_COORDINATOR)}
        finally:
            self._busy.discard(transactional_id)
        if self.groups is not None:
            self.groups.add_pending_transaction(group_id, producer_id, accepted)
        return results

    # -- ending ----------------------------------------------------------------------------------

    async def end_txn(
        self, transactional_id: str, producer_id: int, producer_epoch: int, commit: bool
    ) -> TxnError | None:
        """EndTxn: answered once the transaction is decided (its Prepare* record durable) and,
        unless storage fails, complete (markers and offsets durable, Complete* written)."""
        error = self._status()
        if error is not None:
            return error
        txn = self._txns.get(transactional_id)
        if txn is None or txn.producer_id != producer_id:
            return TxnError.INVALID_PRODUCER_ID_MAPPING
        if producer_epoch != txn.producer_epoch:
            return TxnError.PRODUCER_FENCED
        if transactional_id in self._busy:
            return TxnError.CONCURRENT_TRANSACTIONS
        prepare = TxnState.PREPARE_COMMIT if commit else TxnState.PREPARE_ABORT
        complete = TxnState.COMPLETE_COMMIT if commit else TxnState.COMPLETE_ABORT
        if txn.state is complete:
            return None  # a retry of an EndTxn that completed
        if txn.state is prepare:  # a retry while the completion failed: try it again
            self._busy.add(transactional_id)
            try:
                await self._complete(txn)
            except StorageError as exc:
                log.error("completing transaction %s: %s", transactional_id, exc)
                return TxnError.CONCURRENT_TRANSACTIONS
            finally:
                self._busy.discard(transactional_id)
            return None
        if txn.state is not Ongoing:
            return TxnError.INVALID_TXN_STATE
        self._busy.add(transactional_id)
        try:
            return await self._prepare_and_complete(txn, commit, fence=False)
        finally:
            self._busy.discard(transactional_id)

    # -- produce verification (KIP-890 part 1) ----------------------------------------------------

    def check_produce(self, producer_id: int, producer_epoch: int, tp: TopicPartition) -> TxnError | None:
        """Why a transactional batch of the producer may not go to ``tp`` (None: it may): the
        partition must be in the producer's Ongoing transaction."""
        error = self._status()
        if error is not None:
            return error
        txn = self._by_pid.get(producer_id)
        if txn is None:
            return TxnError.INVALID_TXN_STATE
        if producer_epoch < txn.producer_epoch:
            return TxnError.INVALID_PRODUCER_EPOCH
        if producer_epoch != txn.producer_epoch or txn.state is not Ongoing or tp not in txn.partitions:
            return TxnError.INVALID_TXN_STATE
        return None

    # -- administration --------------------------------------------------------------------------

    def describe(self, transactional_ids: Iterable[str]) -> list[TxnDescription]:
        """DescribeTransactions."""
        error = self._status()
        out = []
        for tid in transactional_ids:
            txn = self._txns.get(tid)
            if error is not None or txn is None:
                out.append(TxnDescription(tid, error or TxnError.TRANSACTIONAL_ID_NOT_FOUND))
                continue
            partitions = set(txn.partitions)
            if txn.groups:
                partitions.add((self.offsets_topic, 0))
            out.append(
                TxnDescription(
                    tid,
                    None,
                    state=txn.state.value,
                    timeout_ms=txn.timeout_ms,
                    start_ms=txn.start_ms,
                    producer_id=txn.producer_id,
                    producer_epoch=txn.producer_epoch,
                    partitions=tuple(sorted(partitions)),
                )
            )
        return out

    def list_transactions(
        self,
        states: Iterable[str] = (),
        producer_ids: Iterable[int] = (),
        min_duration_ms: int = -1,
        pattern: str | None = None,
    ) -> tuple[TxnError | None, list[str], list[TxnListing]]:
        """ListTransactions: ``(error, unknown state filters, listings)``; empty filters match all,
        ``min_duration_ms`` (>= 0) keeps Ongoing transactions running longer than that, ``pattern`` is a
        regular expression the whole id must match (raises ``re.error`` if it is not one)."""
        error = self._status()
        if error is not None:
            return error, [], []
        known = {s.value for s in TxnState}
        wanted_states = set(states)
        unknown = sorted(wanted_states - known)
        wanted_states &= known
        if unknown and not wanted_states:
            return None, unknown, []
        pids = set(producer_ids)
        regex = re.compile(pattern) if pattern else None
        now = self.clock()
        listings = []
        for txn in self._txns.values():
            if wanted_states and txn.state.value not in wanted_states:
                continue
            if pids and txn.producer_id not in pids:
                continue
            if min_duration_ms >= 0 and (txn.state is not Ongoing or now - txn.start_ms <= min_duration_ms):
                continue
            if regex is not None and regex.fullmatch(txn.transactional_id) is None:
                continue
            listings.append(TxnListing(txn.transactional_id, txn.producer_id, txn.state.value))
        return None, unknown, sorted(listings, key=lambda t: t.transactional_id)

    # -- the timer -------------------------------------------------------------------------------

    def _schedule_tick(self) -> None:
        assert self._loop is not None
        if not self._closed:
            self._timer = self._loop.call_later(self.abort_interval_ms / 1000, self._tick_fired)

    def _tick_fired(self) -> None:
        self._timer = None
        if self._closed:
            return
        self._tick_task = asyncio.get_running_loop().create_task(self._tick())

    async def _tick(self) -> None:
        try:
            await self.abort_timed_out()
            await self.expire_ids()
        except Exception:  # never let the timer die
            log.exception("transaction coordinator timer")
        finally:
            self._tick_task = None
            self._schedule_tick()

    async def abort_timed_out(self, now: int | None = None) -> int:
        """Abort (fencing the producer) every Ongoing transaction open longer than its timeout,
        and retry the completion of prepared ones; return how many were aborted."""
        now = self.clock() if now is None else now
        aborted = 0
        for txn in list(self._txns.values()):
            tid = txn.transactional_id
            if tid in self._busy or self._closed:
                continue
            if txn.state is Ongoing and txn.start_ms + txn.timeout_ms <= now:
                log.info("aborting transaction %s: open longer than its timeout %d ms", tid, txn.timeout_ms)
                self._busy.add(tid)
                try:
                    if await self._prepare_and_complete(txn, commit=False, fence=True) is None:
                        aborted += 1
                finally:
                    self._busy.discard(tid)
            elif txn.state in PREPARED:
                self._busy.add(tid)
                try:
                    await self._complete(txn)
                except StorageError as exc:
                    log.error("completing transaction %s: %s", tid, exc)
                finally:
                    self._busy.discard(tid)
        return aborted

    async def expire_ids(self, now: int | None = None) -> int:
        """Forget transactional ids without a transaction, unused for ``id_expiration_ms``."""
        now = self.clock() if now is None else now
        expired = [
            t
            for t in self._txns.values()
            if t.state in COMPLETE
            and t.transactional_id not in self._busy
            and t.updated_ms + self.id_expiration_ms <= now
        ]
        if not expired:
            return 0
        try:
            await self._log.forget([t.transactional_id for t in expired])
        except StorageError as exc:
            log.error("expiring transactional ids: %s", exc)
            return 0
        for t in expired:
            if self._txns.get(t.transactional_id) is t:
                del self._txns[t.transactional_id]
                if self._by_pid.get(t.producer_id) is t:
                    del self._by_pid[t.producer_id]
        return len(expired)


def _group_error(error: GroupError) -> TxnError:
    try:
        return TxnError(error.value)
    except ValueError:
        return TxnError.COORDINATOR_NOT_AVAILABLE
