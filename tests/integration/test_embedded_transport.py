"""The embedded broker transport publishes atomically: a consumer never sees a partial message."""

from __future__ import annotations

import threading
from pathlib import Path

from kombu import Connection

import worker.fstransport  # noqa: F401  (registers the scheme)
from core.settings import load_settings
from worker.app import broker_options


def connection(tmp_path: Path) -> Connection:
    settings = load_settings({}, var_dir=tmp_path)
    return Connection(settings.effective_broker_url, transport_options=broker_options(settings))


def test_a_concurrent_consumer_receives_every_message_whole(tmp_path: Path) -> None:
    count = 2000
    received: list[int] = []
    errors: list[BaseException] = []
    published = threading.Event()

    def consume() -> None:
        try:
            with connection(tmp_path) as conn:
                queue = conn.SimpleQueue("q")
                while len(received) < count:
                    try:
                        message = queue.get(timeout=0.5 if not published.is_set() else 5)
                    except queue.Empty:
                        if published.is_set():
                            return
                        continue
                    received.append(message.payload["n"])
                    message.ack()
        except BaseException as exc:  # report anything, e.g. a JSONDecodeError on a torn file
            errors.append(exc)

    reader = threading.Thread(target=consume)
    reader.start()
    with connection(tmp_path) as conn:
        queue = conn.SimpleQueue("q")
        for n in range(count):
            queue.put({"n": n, "padding": "x" * 2000})
    published.set()
    reader.join(timeout=120)
    assert errors == []
    assert sorted(received) == list(range(count))


def test_the_embedded_broker_keeps_its_files_under_var(tmp_path: Path) -> None:
    with connection(tmp_path) as conn:
        conn.SimpleQueue("solo").put({"n": 1})
    (message,) = (tmp_path / "broker" / "queue").iterdir()
    assert message.name.endswith(".solo.msg")
    assert (tmp_path / "broker" / "control").is_dir()
