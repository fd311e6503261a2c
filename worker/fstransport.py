"""The embedded broker: kombu's filesystem transport, with messages published atomically.

kombu's filesystem channel creates `<name>.<queue>.msg` and then writes it; a consumer polling
in between moves and reads an empty file, and Celery stops the worker on the JSONDecodeError
(an open kombu issue; measured in bench/RESULTS.md: it happened in 2 of 3 runs). Here the message
is written under a name the consumer skips (`….msg.part`) and renamed into place, which is atomic
within one folder, so a consumer only ever sees whole messages.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.json import dumps

SCHEME = "samverkanfs"


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

    def _queue_bind(self, exchange: Any, routing_key: Any, pattern: Any, queue: Any) -> None:
        # kombu creates an exchange's binding table with open("wb") and writes it after taking
        # its lock, so a publisher reading the table in between reads an empty file and fails
        # with a JSONDecodeError. A new table is written aside and linked into place (atomic,
        # and refused if another process created it meanwhile); an existing one is updated by
        # kombu's own read-modify-write under its lock.
        file = self._exchange_file(exchange)  # type: ignore[no-untyped-call]
        if not file.exists():
            self.control_folder.mkdir(parents=True, exist_ok=True)
            entry = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
            partial = file.with_name(f"{file.name}.{uuid.uuid4()}.part")
            partial.write_bytes(str(dumps([entry])).encode("utf-8"))  # type: ignore[no-untyped-call]
            try:
                os.link(partial, file)
                return
            except FileExistsError:
                pass
            finally:
                partial.unlink()
        super()._queue_bind(exchange, routing_key, pattern, queue)  # type: ignore[no-untyped-call]


class Transport(filesystem.Transport):
    Channel = Channel


TRANSPORT_ALIASES.setdefault(SCHEME, "worker.fstransport:Transport")
