"""The purposes of a case meeting's hand-over rows, which the send-time guard reads back: every
hand-over purpose names its invitation and kind, and no purpose a case plans is mistaken for one
(it would otherwise be let through while its invitation is called for)."""

from __future__ import annotations

import datetime as dt
import re

from hypothesis import given
from hypothesis import strategies as st

from scheduler.cases.handover import AGAIN, LEAVES, handed_over
from scheduler.cases.messages import plan_case
from scheduler.cases.views import CaseState, CaseView, MeetingState, MeetingView
from scheduler.spec import CaseRules

invitations = st.builds(
    lambda n, v: f"kallelse-m{n}" + (f"-v{v}" if v else ""),
    st.integers(1, 9),
    st.integers(0, 20),
)


@given(invitations, st.sampled_from([LEAVES, AGAIN]), st.integers(1, 10**9))
def test_a_hand_over_purpose_names_its_invitation_and_kind(
    invitation: str, kind: str, row: int
) -> None:
    assert handed_over(f"{invitation}-{kind}-{row}") == (invitation, kind)


@given(
    st.one_of(
        invitations,
        st.text(alphabet="abcdefghijklmnopqrstuvwxyzåäö-0123456789", max_size=30),
        st.sampled_from(["frist1-forsenad", "installt-m1", "kallelse-m1-lamnar-3", "kallelse"]),
    ),
    st.sampled_from([LEAVES, AGAIN]),
    st.integers(0, 10**9),
)
def test_only_an_invitations_hand_over_is_read_as_one(prefix: str, kind: str, row: int) -> None:
    """The guard lets a hand-over row through only for an invitation (`kallelse-m<n>[-v<s>]`)."""
    found = handed_over(f"{prefix}-{kind}-{row}")
    expected = (prefix, kind) if re.fullmatch(r"kallelse-m\d+(-v\d+)?", prefix) else None
    assert found == expected


def test_no_purpose_a_case_plans_is_a_hand_over() -> None:
    """Every state with meetings booked, held and cancelled: none of its purposes matches."""
    utc = dt.UTC
    start = dt.datetime(2027, 3, 25, 12, tzinfo=utc)
    for state in CaseState:
        meetings = tuple(
            MeetingView(
                n,
                meeting_state,
                start + dt.timedelta(days=n),
                start + dt.timedelta(days=n, hours=1),
                None,
                sequence,
                dt.datetime(2027, 3, 3, 9, tzinfo=utc),
                held_on=start.date() if meeting_state is MeetingState.HELD else None,
                held_recorded_at=start if meeting_state is MeetingState.HELD else None,
                cancelled_at=start if meeting_state is MeetingState.CANCELLED else None,
            )
            for n, (meeting_state, sequence) in enumerate(
                [(s, q) for s in MeetingState for q in (0, 2)], start=1
            )
        )
        view = CaseView(
            reference="2027-0002",
            state=state,
            known_on=dt.date(2027, 3, 1),
            opened_at=dt.datetime(2027, 3, 2, 8, tzinfo=utc),
            owner="sam",
            owner_role="socialsekreterare",
            school_role="rektor@ekskolan",
            meetings=meetings,
            consent_withdrawn_at=dt.datetime(2027, 3, 4, tzinfo=utc),
            closed_at=dt.datetime(2027, 5, 1, tzinfo=utc),
        )
        plan = plan_case(view, CaseRules(), dt.time(8), "enhetschef-ifo@ifo")
        assert plan
        assert [m.purpose for m in plan if handed_over(m.purpose)] == []
