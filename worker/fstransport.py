"""The embedded broker: kombu's filesystem transport, with messages published atomically.

kombu's filesystem channel creates `<name>.<queue>.msg` and then writes it; a consumer polling
in between moves and reads an empty file, and Celery stops the worker on the JSONDecodeError
(an open kombu issue; measured in bench/RESULTS.md: it happened in 2 of 3 runs). Here the message
is written under a name the consumer skips (`….msg.part`) and renamed into place, which is atomic
within one folder, so a consumer only ever sees whole messages.

The binding table of an exchange (`control/<exchange>.exchange`, the queues a publish is routed
to) had races of the same kind, measured by tests/integration/test_embedded_transport.py:
- kombu creates a new table with open("wb") and writes it after taking its lock: a publisher
  reading in between read an empty file (JSONDecodeError), and two binders creating it at once
  truncated each other, dropping one's binding, so that queue's messages went nowhere.
- kombu records a binding in a process-wide registry before writing it to the table, and skips
  a bind the registry already holds: a thread publishing right after its own bind could find no
  binding on disk while another thread was still writing it, and a process that moved to another
  broker folder never wrote the binding there at all.
Here every change to a table is a read-modify-write under an exclusive lock on a separate lock
file that is never replaced (`<exchange>.exchange.lock`), written under a temporary name and
renamed into place, so a reader always sees one whole table and no bind drops another's; and a
bind writes its binding to the table before kombu's registry records it, every time, so once
`queue_bind` returns a publish finds the binding.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.json import dumps, loads

SCHEME = "samverkanfs"
Entry = filesystem.exchange_queue_t  # one binding: (routing_key, pattern, queue)


class Channel(filesystem.Channel):
    # kombu's own bases disagree on this parameter's name (message / payload).
    def _put(self, queue: Any, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        name = f"{round(time.monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = final + ".part"  # not "<queue>.msg": the consumer's _get skips it
        with open(partial, "wb") as handle:
            # kombu's JSON (it knows the types Celery's messages carry), as the stock _put.
            handle.write(str(dumps(payload)).encode("utf-8"))  # type: ignore[no-untyped-call]
        os.replace(partial, final)

    def queue_bind(
        self,
        queue: Any,
        exchange: Any = None,
        routing_key: Any = "",
        arguments: Any = None,
        **kwargs: Any,
    ) -> None:
        # The table on disk first: kombu's registry may already claim this binding (another
        # thread is writing it, or it was made in another broker folder) and then skips it.
        exchange = exchange or "amq.direct"
        kind = self.typeof(exchange)  # type: ignore[no-untyped-call]
        meta = kind.prepare_bind(queue, exchange, routing_key, arguments)
        self._queue_bind(exchange, *meta)
        super().queue_bind(queue, exchange, routing_key, arguments, **kwargs)  # type: ignore[no-untyped-call]

    def get_table(self, exchange: Any) -> list[Entry]:
        # Tables are only ever renamed into place whole (below), so no lock is needed to read.
        return self._read_table(self._exchange_file(exchange))  # type: ignore[no-untyped-call]

    def _queue_bind(self, exchange: Any, routing_key: Any, pattern: Any, queue: Any) -> None:
        entry = Entry(routing_key or "", pattern or "", queue or "")
        with self._table_lock(exchange) as file:
            table = self._read_table(file)
            if entry not in table:
                self._write_table(file, [entry, *table])

    def _delete(
        self, queue: Any, exchange: Any, routing_key: Any, pattern: Any, *args: Any, **kwargs: Any
    ) -> None:
        # kombu's virtual channel purges the queue; kombu's filesystem channel then edits the
        # table in place, which a concurrent reader could see half written.
        purge = super(filesystem.Channel, self)._delete
        purge(queue, exchange, routing_key, pattern, *args, **kwargs)  # type: ignore[no-untyped-call]
        entry = Entry(routing_key or "", pattern or "", queue or "")
        with self._table_lock(exchange) as file:
            table = self._read_table(file)
            if entry in table:
                self._write_table(file, [kept for kept in table if kept != entry])

    @contextmanager
    def _table_lock(self, exchange: Any) -> Iterator[Path]:
        """Hold the exchange's table lock exclusively; yields the table's path."""
        file: Path = self._exchange_file(exchange)  # type: ignore[no-untyped-call]
        file.parent.mkdir(parents=True, exist_ok=True)
        try:
            handle = open(file.with_name(file.name + ".lock"), "ab")  # noqa: SIM115
        except OSError as exc:
            raise ChannelError(f"Cannot open the lock of {file}") from exc
        with handle:
            filesystem.lock(handle, filesystem.LOCK_EX)  # type: ignore[no-untyped-call]
            try:
                yield file
            finally:
                filesystem.unlock(handle)  # type: ignore[no-untyped-call]

    @staticmethod
    def _read_table(file: Path) -> list[Entry]:
        try:
            text = file.read_bytes().decode("utf-8")
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ChannelError(f"Cannot open {file}") from exc
        return [Entry(*entry) for entry in loads(text)]  # type: ignore[no-untyped-call]

    @staticmethod
    def _write_table(file: Path, table: list[Entry]) -> None:
        partial = file.with_name(f"{file.name}.{uuid.uuid4()}.part")
        try:
            with open(partial, "wb") as handle:
                handle.write(str(dumps(table)).encode("utf-8"))  # type: ignore[no-untyped-call]
                handle.flush()
                os.fsync(handle.fileno())  # a crash must not leave an empty table in place
            os.replace(partial, file)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise ChannelError(f"Cannot write {file}") from exc


class Transport(filesystem.Transport):
    Channel = Channel


TRANSPORT_ALIASES.setdefault(SCHEME, "worker.fstransport:Transport")
