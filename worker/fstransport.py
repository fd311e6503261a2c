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


class Transport(filesystem.Transport):
    Channel = Channel


TRANSPORT_ALIASES.setdefault(SCHEME, "worker.fstransport:Transport")
