"""The one owner of writes to the outbox (the `notification` table).

Every other module plans, claims, sends and cancels through these functions:

- `rows`: the one insert, the one sync (insert / update / revive / cancel for a scope of
  keys) and the one cancel, whose reason is trimmed to the column here;
- `claims`: the tick's claim (`pending → queued`), the sweeper, and the queries that go with
  them;
- `sending`: the worker's claim (`queued → sending`) and the outcome of a send (sent, retry,
  failed); a send stopped at the last moment is a `cancel`; `resend` puts a failed row back.
"""

from scheduler.outbox.claims import (
    anything_due,
    claim_due,
    next_due,
    open_count,
    serialize_ticks,
    sweep_expired,
)
from scheduler.outbox.invites import (
    SUPERSEDED,
    invite_method,
    refusal,
    supersede_pending,
)
from scheduler.outbox.rows import (
    CANCEL_REASON_CHARS,
    SyncResult,
    Wanted,
    cancel,
    in_retry,
    insert,
    not_in_retry,
    sync,
)
from scheduler.outbox.sending import (
    claim_for_sending,
    claim_many_for_sending,
    mark_failed,
    mark_retry,
    mark_sent,
    mark_sent_by_id,
    mark_sent_plain,
    record_plain_send,
    resend,
)

__all__ = [
    "CANCEL_REASON_CHARS",
    "SUPERSEDED",
    "SyncResult",
    "Wanted",
    "anything_due",
    "cancel",
    "claim_due",
    "claim_for_sending",
    "claim_many_for_sending",
    "in_retry",
    "insert",
    "invite_method",
    "mark_failed",
    "mark_retry",
    "mark_sent",
    "mark_sent_by_id",
    "mark_sent_plain",
    "next_due",
    "not_in_retry",
    "open_count",
    "record_plain_send",
    "refusal",
    "resend",
    "serialize_ticks",
    "supersede_pending",
    "sweep_expired",
    "sync",
]
