"""One module owns every write to the outbox: no other code sets a notification's status,
inserts, updates or cancels one. A new write elsewhere fails here, naming file and line."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OWNER = ROOT / "scheduler" / "outbox"
PACKAGES = ("samverkan", "scheduler", "worker", "models")
WRITES = re.compile(
    r"\.(status|cancel_reason|sent_at|smtp_reply|last_error|claimed_at)\s*=[^=]"
    r"|\b(insert|update|delete)\(\s*models\.Notification\b"
    r"|\bvalues\([^)]*\bstatus\s*="
)


def writes_outside_the_owner() -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if OWNER in path.parents or "migrations" in path.parts:
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if WRITES.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    return found


def test_only_scheduler_outbox_writes_to_the_outbox() -> None:
    assert writes_outside_the_owner() == []


def test_the_check_sees_a_write() -> None:
    for line in (
        "row.status = Status.SENT",
        "notification.cancel_reason = reason",
        "session.execute(update(models.Notification).where(x))",
        ".values(status=Status.QUEUED)",
    ):
        assert WRITES.search(line), line
    assert not WRITES.search("if row.status == Status.SENT:")
