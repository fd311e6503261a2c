"""Case work as service functions: what the CLI (and later the web/API layer) calls.

Each function works inside the caller's transaction: it checks the request against the rules
(scheduler/cases.py, pure), writes the new state, brings the outbox in line with the state's
plan (scheduler/caseoutbox.py) and writes an audit row. An error raises before anything is
committed, so bad input changes nothing. Free text (notes, who gave consent and its scope, a
plan's goals and actions) is stored for signed-in staff and never enters a message or a log.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field, replace
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

import models
from core.dates import DAY_RULE, parse_day
from core.errors import CaseInputError as CaseInputError  # re-exported
from core.errors import NotFoundError
from scheduler import cases as rules_
from scheduler.bookings import NonexistentLocalTime
from scheduler.calendar import STOCKHOLM, local_date
from scheduler.caseoutbox import (
    Subject,
    SyncResult,
    cancel_unsafe,
    case_plan,
    case_subject,
    case_view,
    recipient_problem,
    refuse_external,
    report_plan,
    report_subject,
    report_view,
    role_ref_problem,
    rules_of,
    sync_rows,
)
from scheduler.cases import CASE, REPORT, CaseRuleError, CaseState, MeetingState, ReportState
from scheduler.municipality import MunicipalitySettings
from scheduler.places import unknown_place
from scheduler.privacy import refuse_identity_number
from scheduler.spec import SCHOOL_KINDS, UnitKind

log = logging.getLogger("samverkan.cases")

ADMINISTRATOR = "administrator"
MAX_TEXT = 4000


@dataclass
class Outcome:
    """What a command did, in lines a person can read (no personal data about the child)."""

    reference: str
    lines: list[str] = field(default_factory=list)
    sync: SyncResult | None = None

    def __str__(self) -> str:
        return "\n".join(self.lines)


# --- lookups ------------------------------------------------------------------------------------


def _municipality(session: Session, municipality_id: int) -> models.Municipality:
    return session.get_one(models.Municipality, municipality_id)


def _person(session: Session, municipality_id: int, key: str, what: str) -> models.Person:
    person = session.scalar(
        select(models.Person).where(
            models.Person.municipality_id == municipality_id, models.Person.key == key
        )
    )
    if person is None or not person.active:
        raise CaseInputError(f"{what}: no active person with that key in this municipality")
    return person


def _unit(session: Session, municipality_id: int, key: str, what: str) -> models.Unit:
    unit = session.scalar(
        select(models.Unit).where(
            models.Unit.municipality_id == municipality_id, models.Unit.key == key
        )
    )
    if unit is None:
        raise CaseInputError(f"{what}: no unit with that key in this municipality")
    return unit


def _holds(person: models.Person, role: str, unit_id: int | None, on: dt.date) -> bool:
    for a in person.roles:
        if a.role != role or (unit_id is not None and a.unit_id != unit_id):
            continue
        if (a.valid_from is None or a.valid_from <= on) and (
            a.valid_to is None or on <= a.valid_to
        ):
            return True
    return False


def _report(session: Session, municipality_id: int, reference: str) -> models.Report:
    found = session.scalar(
        select(models.Report).where(
            models.Report.municipality_id == municipality_id, models.Report.reference == reference
        )
    )
    if found is None:
        raise NotFoundError("REFERENCE: no report with that reference in this municipality")
    return found


def _case(session: Session, municipality_id: int, reference: str) -> models.Case:
    found = session.scalar(
        select(models.Case).where(
            models.Case.municipality_id == municipality_id, models.Case.reference == reference
        )
    )
    if found is None:
        raise NotFoundError("REFERENCE: no case with that reference in this municipality")
    return found


# --- references, audit, text --------------------------------------------------------------------


def allocate_reference(session: Session, municipality_id: int, year: int) -> str:
    """The next reference of the municipality's series for `year`: "2027-0042"."""
    bump = (
        update(models.ReferenceCounter)
        .where(
            models.ReferenceCounter.municipality_id == municipality_id,
            models.ReferenceCounter.year == year,
        )
        .values(last=models.ReferenceCounter.last + 1)
        .returning(models.ReferenceCounter.last)
    )
    number = session.scalar(bump)
    if number is None:
        insert = (
            postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        )
        session.execute(
            insert(models.ReferenceCounter)
            .values(municipality_id=municipality_id, year=year, last=0)
            .on_conflict_do_nothing(index_elements=["municipality_id", "year"])
        )
        number = session.scalar(bump)
    assert number is not None
    return f"{year}-{number:04d}"


def _audit(
    session: Session,
    municipality_id: int,
    series: str,
    reference: str,
    actor: models.Person | None,
    action: str,
    now: dt.datetime,
    **detail: Any,
) -> None:
    session.add(
        models.CaseAudit(
            municipality_id=municipality_id,
            series=series,
            reference=reference,
            at=now,
            actor_id=actor.id if actor else None,
            actor=actor.key if actor else "system",
            action=action,
            detail=detail,
        )
    )
    log.info(
        "%s %s: %s",
        series,
        reference,
        action,
        extra={"action": f"{series}.{action}", "reference": reference},
    )


def _audit_cancelled(
    session: Session,
    municipality_id: int,
    series: str,
    reference: str,
    actor: models.Person | None,
    now: dt.datetime,
    result: SyncResult,
    reason: str,
) -> None:
    if result.cancelled:
        _audit(
            session,
            municipality_id,
            series,
            reference,
            actor,
            "reminders_cancelled",
            now,
            count=len(result.cancelled),
            purposes=sorted(set(result.cancelled)),
            reason=reason,
        )


def _free_text(text: str, what: str) -> str:
    """Staff-only free text: kept as typed (it never leaves), within a sane length."""
    text = text.strip()
    if not text:
        raise CaseInputError(f"{what} must not be empty")
    if len(text) > MAX_TEXT:
        raise CaseInputError(f"{what} is longer than {MAX_TEXT} characters")
    return text


def check_place(municipality: models.Municipality, key: str | None) -> str | None:
    """A meeting's place is chosen by key from the profile: nothing typed reaches an invite."""
    if unknown_place(MunicipalitySettings.of(municipality).places, key):
        raise CaseInputError(
            "--place: no place with that key; a meeting's place is one of the keys under "
            "'places' in the profile (free text is not accepted)"
        )
    return key


def check_address(email: str, what: str) -> str:
    refuse_identity_number(email, what)
    try:
        valid = validate_email(email, check_deliverability=False)
    except EmailNotValidError:
        raise CaseInputError(
            f"{what} is not a usable e-mail address (one bare address, like namn@example.se)"
        ) from None
    return str(valid.normalized)


def _day(text: str, what: str) -> dt.date:
    day = parse_day(text)  # within the planned years: deadlines are counted from it
    if day is None:
        raise CaseInputError(f"{what}: give {DAY_RULE}")
    return day


# --- reports ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportRequest:
    unit: str
    reporter: str
    district: str
    acute: bool = False
    suspected_abuse: bool = False
    wants_feedback: bool = False
    guardians: tuple[str, ...] = ()


def register_report(
    session: Session, municipality_id: int, request: ReportRequest, now: dt.datetime
) -> Outcome:
    """Register a report of concern; the reporter and the district's intake unit are told."""
    municipality = _municipality(session, municipality_id)
    rules = rules_of(municipality)
    unit = _unit(session, municipality_id, request.unit, "--unit")
    reporter = _person(session, municipality_id, request.reporter, "--reporter")
    district = session.scalar(
        select(models.District).where(
            models.District.municipality_id == municipality_id,
            models.District.key == request.district,
        )
    )
    if district is None:
        raise CaseInputError("--district: no district with that key in this municipality")
    intake = session.scalar(
        select(models.Unit)
        .where(
            models.Unit.municipality_id == municipality_id,
            models.Unit.district_id == district.id,
            models.Unit.kind == UnitKind.MOTTAGNINGSENHET.value,
        )
        .order_by(models.Unit.key)
    )
    if intake is None:
        raise CaseInputError(f"district {district.key!r} has no intake unit (mottagningsenhet)")
    guardians = tuple(
        dict.fromkeys(check_address(g, "a guardian's address") for g in request.guardians)
    )
    reference = allocate_reference(session, municipality_id, local_date(now).year)
    report = models.Report(
        municipality_id=municipality_id,
        reference=reference,
        reporting_unit_id=unit.id,
        reporter_id=reporter.id,
        district_id=district.id,
        intake_unit_id=intake.id,
        acute=request.acute,
        suspected_abuse=request.suspected_abuse,
        wants_feedback=request.wants_feedback,
        guardian_emails=list(guardians),
        state=ReportState.REGISTERED.value,
        registered_at=now,
    )
    session.add(report)
    session.flush()
    subject, rows = report_plan(session, report)
    result = sync_rows(session, subject, rows, now, "report changed")
    _audit(
        session,
        municipality_id,
        REPORT,
        reference,
        reporter,
        "registered",
        now,
        unit=unit.key,
        district=district.key,
        intake=intake.key,
        acute=request.acute,
        suspected_abuse=request.suspected_abuse,
        wants_feedback=request.wants_feedback,
        guardians_notified=len(guardians),
    )
    outcome = Outcome(reference, [f"Anmälan {reference} registrerad; mottagare: {intake.name}"])
    phone = intake.phone or MunicipalitySettings.of(municipality).intake_phone
    if request.acute or request.suspected_abuse:
        outcome.lines.append(
            f"BRÅDSKANDE: ring {intake.name} på {phone or 'mottagningens nummer'} innan du "
            "skriver ner anmälan."
        )
    if request.wants_feedback:
        feedback_on = rules_.after(local_date(now), rules.feedback_after)
        outcome.lines.append(f"Återkoppling: kontakta {intake.name} från {feedback_on}.")
    outcome.lines.append(f"{result.created} meddelande(n) planerade")
    outcome.sync = result
    return outcome


def receive_report(
    session: Session, municipality_id: int, reference: str, by: str, now: dt.datetime
) -> Outcome:
    """The intake unit confirms receipt; the reporter is told that, and by whom."""
    report = _report(session, municipality_id, reference)
    receiver = _person(session, municipality_id, by, "--by")
    municipality = _municipality(session, municipality_id)
    rules = rules_of(municipality)
    today = local_date(now)
    allowed = _holds(receiver, rules.intake_role, report.intake_unit_id, today) or _holds(
        receiver, ADMINISTRATOR, None, today
    )
    if not allowed:
        intake = session.get_one(models.Unit, report.intake_unit_id)
        raise CaseRuleError(f"only the intake unit {intake.name} receives report {reference}")
    view = rules_.receive_report(report_view(session, report, rules), receiver.key, now)
    report.state = view.state.value
    report.received_at = now
    report.received_by_id = receiver.id
    session.flush()
    subject, rows = report_plan(session, report)
    result = sync_rows(session, subject, rows, now, "report received")
    _audit(session, municipality_id, REPORT, reference, receiver, "received", now)
    return Outcome(reference, [f"Anmälan {reference} mottagen av {receiver.name}"], result)


def flag_suspected_abuse(
    session: Session, municipality_id: int, reference: str, by: str, now: dt.datetime
) -> Outcome:
    """The picture changed: the report concerns suspected violence or sexual abuse after all.

    From now on nothing about it, or about a case that follows it, reaches anyone who is not
    staff: the guardians' addresses recorded for the report and its cases are erased, every
    message to a non-staff recipient still to be sent is cancelled at once, and the change is
    audited. The reporter, the intake unit or an administrator may flag; nobody can unflag.
    """
    report = _report(session, municipality_id, reference)
    actor = _person(session, municipality_id, by, "--by")
    municipality = _municipality(session, municipality_id)
    today = local_date(now)
    allowed = (
        actor.id == report.reporter_id
        or _holds(actor, rules_of(municipality).intake_role, report.intake_unit_id, today)
        or _holds(actor, ADMINISTRATOR, None, today)
    )
    if not allowed:
        raise CaseRuleError(
            "--by: only the reporter, the intake unit or an administrator may flag a report"
        )
    if report.suspected_abuse:
        return Outcome(reference, [f"Anmälan {reference} är redan markerad; inget ändrades"])
    reason = "the report was flagged as suspected violence or abuse (confidentiality)"
    report.suspected_abuse = True
    erased = len(report.guardian_emails)
    report.guardian_emails = []
    session.flush()
    subject, rows = report_plan(session, report)
    cancelled = sync_rows(session, subject, rows, now, reason).cancelled
    count = len(cancelled) + cancel_unsafe(session, subject, now, reason)
    linked = list(
        session.scalars(
            select(models.Case).where(models.Case.report_id == report.id).order_by(models.Case.id)
        )
    )
    for case in linked:
        erased += len(case.externals)
        case.externals = []
        count += len(_sync_case(session, case, now, reason).cancelled)
        count += cancel_unsafe(session, case_subject(session, case), now, reason)
    _audit(
        session,
        municipality_id,
        REPORT,
        reference,
        actor,
        "flagged_suspected_abuse",
        now,
        cancelled=count,
        addresses_erased=erased,
        cases=[c.reference for c in linked],
    )
    return Outcome(
        reference,
        [
            f"Anmälan {reference} markerad: misstänkt våld eller sexuella övergrepp",
            f"{count} meddelande(n) till andra än personal stoppade; "
            f"{erased} vårdnadshavaradress(er) raderade",
        ],
    )


# --- cases --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseRequest:
    owner: str
    by: str
    owner_role: str | None = None
    known_on: dt.date | None = None
    school: str | None = None
    family_worker: str | None = None
    staff: tuple[str, ...] = ()
    guardians: tuple[str, ...] = ()
    pupil: str | None = None
    adult_pupil: bool = False
    sip: bool = False
    report: str | None = None


def open_case(
    session: Session, municipality_id: int, request: CaseRequest, now: dt.datetime
) -> Outcome:
    """Open a cooperation case; its owner is whoever raised it (processbärare)."""
    municipality = _municipality(session, municipality_id)
    rules = rules_of(municipality)
    today = local_date(now)
    owner = _person(session, municipality_id, request.owner, "--owner")
    actor = _person(session, municipality_id, request.by, "--by")
    owner_role = request.owner_role or next(
        (r for r in rules.owner_roles if _holds(owner, r, None, today)), None
    )
    if owner_role is None or not _holds(owner, owner_role, None, today):
        allowed = ", ".join(rules.owner_roles)
        raise CaseRuleError(f"the case owner must hold one of the roles {allowed}")
    known_on = request.known_on or today
    rules_.check_open(known_on, now, owner_role, rules)
    school = _school(session, municipality_id, request.school)
    family_worker = (
        _person(session, municipality_id, request.family_worker, "--family-worker")
        if request.family_worker
        else None
    )
    staff = [_person(session, municipality_id, k, "--staff").key for k in request.staff]
    externals = [
        {"kind": "guardian", "email": check_address(g, "a guardian's address")}
        for g in request.guardians
    ]
    if request.pupil:
        externals.append({"kind": "pupil", "email": check_address(request.pupil, "--pupil")})
    report = _report(session, municipality_id, request.report) if request.report else None
    if report is not None:
        # Guardians and pupils of a case that follows an abuse report are never even recorded,
        # nor is anyone else who is not staff (scheduler/confidential.py).
        linked = report_subject(report)
        for external in externals:
            refuse_external(linked, external["kind"], "a case participant")
        _refuse_non_staff(session, linked, [family_worker], "--family-worker")
        _refuse_non_staff(
            session,
            linked,
            [_person(session, municipality_id, k, "--staff") for k in request.staff],
            "--staff",
        )
    reference = allocate_reference(session, municipality_id, today.year)
    case = models.Case(
        municipality_id=municipality_id,
        reference=reference,
        state=CaseState.OPEN.value,
        owner_id=owner.id,
        owner_role=owner_role,
        known_on=known_on,
        school_unit_id=school.id if school else None,
        family_worker_id=family_worker.id if family_worker else None,
        staff=list(dict.fromkeys(staff)),
        externals=externals,
        adult_pupil=request.adult_pupil,
        sip=request.sip,
        report_id=report.id if report else None,
        opened_at=now,
        opened_by_id=actor.id,
        rounds=0,
        follow_ups=[],
    )
    session.add(case)
    session.flush()
    result = _sync_case(session, case, now, "case changed")
    view = case_view(session, case)
    first = rules_.deadlines(view, rules)[0]
    _audit(
        session,
        municipality_id,
        CASE,
        reference,
        actor,
        "opened",
        now,
        owner=owner.key,
        owner_role=owner_role,
        known_on=known_on.isoformat(),
        first_deadline=first.last_day.isoformat(),
        sip=request.sip,
        report=report.reference if report else None,
        externals=len(externals),
    )
    return Outcome(
        reference,
        [
            f"Ärende {reference} öppnat; processbärare {owner.name}",
            f"Första mötet senast {first.last_day}; samtycke krävs innan mötet bokas",
        ],
        result,
    )


def _refuse_non_staff(
    session: Session, subject: Subject, people: list[models.Person | None], option: str
) -> None:
    if not subject.suspected_abuse:
        return
    municipality = _municipality(session, subject.municipality_id)
    for person in people:
        if person is not None and recipient_problem(session, municipality, person.id, person.email):
            refuse_external(subject, "non-staff", f"a participant given by {option}")


def _school(session: Session, municipality_id: int, key: str | None) -> models.Unit | None:
    if key is None:
        return None
    unit = _unit(session, municipality_id, key, "--school")
    if unit.kind not in {k.value for k in SCHOOL_KINDS}:
        raise CaseInputError(f"--school: {unit.name} is not a förskola, grundskola or gymnasium")
    return unit


def _sync_case(session: Session, case: models.Case, now: dt.datetime, reason: str) -> SyncResult:
    session.flush()
    session.expire(case, ["meetings", "sip_items"])
    subject, rows = case_plan(session, case)
    result = sync_rows(session, subject, rows, now, reason)
    return result


def _owner_or_admin(
    session: Session, municipality_id: int, case: models.Case, by: str, now: dt.datetime
) -> models.Person:
    actor = _person(session, municipality_id, by, "--by")
    if actor.id == case.owner_id or _holds(actor, ADMINISTRATOR, None, local_date(now)):
        return actor
    raise CaseRuleError(
        f"only the case owner (processbäraren) or an administrator may do that in case "
        f"{case.reference}"
    )


def _apply(case: models.Case, view: rules_.CaseView) -> None:
    """Write a view's state back to the rows (SIP items are added by their own command)."""
    case.state = view.state.value
    case.rounds = view.rounds
    case.consent_recorded_at = view.consent_recorded_at
    case.consent_withdrawn_at = view.consent_withdrawn_at
    case.closed_at = view.closed_at
    case.follow_ups = [d.isoformat() for d in view.follow_ups]
    case.sip_follow_up = view.sip_follow_up
    existing = {m.number: m for m in case.meetings}
    for m in view.meetings:
        row = existing.get(m.number)
        if row is None:
            row = models.CaseMeeting(number=m.number)
            case.meetings.append(row)
        row.state = m.state.value
        row.starts_at = m.start
        row.ends_at = m.end
        row.location = m.location
        row.sequence = m.sequence
        row.booked_at = m.booked_at
        row.held_on = m.held_on
        row.held_recorded_at = m.held_recorded_at
        row.cancelled_at = m.cancelled_at


def _change(
    session: Session,
    case: models.Case,
    view: rules_.CaseView,
    actor: models.Person,
    action: str,
    now: dt.datetime,
    reason: str,
    **detail: Any,
) -> SyncResult:
    _apply(case, view)
    result = _sync_case(session, case, now, reason)
    _audit(session, case.municipality_id, CASE, case.reference, actor, action, now, **detail)
    _audit_cancelled(
        session, case.municipality_id, CASE, case.reference, actor, now, result, reason
    )
    return result


@dataclass(frozen=True)
class ConsentRequest:
    by: str
    given_by: str  # staff-only free text: who gave it
    scope: str  # staff-only free text: what it covers
    given_on: dt.date | None = None
    pupil_own: bool = False


def record_consent(
    session: Session,
    municipality_id: int,
    reference: str,
    request: ConsentRequest,
    now: dt.datetime,
) -> Outcome:
    case = _case(session, municipality_id, reference)
    actor = _owner_or_admin(session, municipality_id, case, request.by, now)
    given_by = _free_text(request.given_by, "--given-by")
    scope = _free_text(request.scope, "--scope")
    given_on = request.given_on or local_date(now)
    if given_on > local_date(now):
        raise CaseRuleError("consent cannot be given in the future")
    view = rules_.give_consent(case_view(session, case), now, request.pupil_own)
    case.consent_given_by = given_by
    case.consent_scope = scope
    case.consent_given_on = given_on
    case.consent_pupil_own = request.pupil_own
    case.consent_recorded_by_id = actor.id
    result = _change(
        session,
        case,
        view,
        actor,
        "consent",
        now,
        "consent recorded",
        given_on=given_on.isoformat(),
        pupil_own=request.pupil_own,
    )
    return Outcome(reference, [f"Samtycke registrerat i ärende {reference}"], result)


def withdraw_consent(
    session: Session, municipality_id: int, reference: str, by: str, now: dt.datetime
) -> Outcome:
    """Consent withdrawn: every pending message is cancelled, meetings to come are called off."""
    case = _case(session, municipality_id, reference)
    actor = _owner_or_admin(session, municipality_id, case, by, now)
    view = rules_.withdraw_consent(case_view(session, case), now)
    case.consent_given_by = None
    case.consent_scope = None
    result = _change(session, case, view, actor, "consent_withdrawn", now, "consent withdrawn")
    return Outcome(
        reference,
        [
            f"Samtycket återkallat i ärende {reference}; "
            f"{len(result.cancelled)} väntande meddelande(n) stoppade"
        ],
        result,
    )


@dataclass(frozen=True)
class BookingRequest:
    by: str
    date: str
    time: str
    place: str | None = None  # the key of one of the profile's places
    meeting: int | None = None


def book_meeting(
    session: Session,
    municipality_id: int,
    reference: str,
    request: BookingRequest,
    now: dt.datetime,
) -> Outcome:
    """Book (or move) a case meeting: invites go to every participant, one each."""
    case = _case(session, municipality_id, reference)
    actor = _owner_or_admin(session, municipality_id, case, request.by, now)
    municipality = _municipality(session, municipality_id)
    rules = rules_of(municipality)
    location = check_place(municipality, request.place)
    day = _day(request.date, "date")
    try:
        at = dt.time.fromisoformat(request.time)
    except ValueError:
        raise CaseInputError("TIME: not a time; write HH:MM") from None
    try:
        start = rules_.local_start(day, at)
    except NonexistentLocalTime as exc:
        raise CaseInputError(str(exc)) from None
    before = case_view(session, case)
    view = rules_.book_meeting(before, request.meeting, start, rules.meeting_minutes, location, now)
    if view == before:
        return Outcome(reference, [f"Ärende {reference}: redan bokat så; inget ändrades"])
    changed = next(m for m in view.meetings if m not in before.meetings)
    result = _change(
        session,
        case,
        view,
        actor,
        "booked",
        now,
        f"meeting {changed.number} booked",
        meeting=changed.number,
        date=day.isoformat(),
        time=at.isoformat("minutes"),
        sequence=changed.sequence,
    )
    lines = [
        f"Ärende {reference}: möte {changed.number} bokat {day} kl. {at:%H.%M}; "
        f"{result.created} meddelande(n) planerade, {len(result.cancelled)} stoppade"
    ]
    deadline = next((d for d in rules_.deadlines(view, rules) if d.meeting == changed.number), None)
    if deadline is not None and not deadline.met:
        lines.append(
            f"OBS: fristen för möte {changed.number} går ut {deadline.last_day}; mötet hålls efter "
            "den, så förseningen rapporteras"
        )
    return Outcome(reference, lines, result)


def hold_meeting(
    session: Session,
    municipality_id: int,
    reference: str,
    by: str,
    meeting: int | None,
    held_on: dt.date | None,
    now: dt.datetime,
) -> Outcome:
    """Record that a meeting took place (the earliest booked one unless told which)."""
    case = _case(session, municipality_id, reference)
    actor = _owner_or_admin(session, municipality_id, case, by, now)
    before = case_view(session, case)
    if meeting is None:
        booked = [m.number for m in before.meetings if m.state is MeetingState.BOOKED]
        if not booked:
            raise CaseRuleError(f"case {reference} has no booked meeting to record as held")
        meeting = booked[0]
    view = rules_.hold_meeting(before, meeting, held_on, now)
    held = view.meeting(meeting)
    assert held is not None
    result = _change(
        session,
        case,
        view,
        actor,
        "held",
        now,
        f"meeting {meeting} held",
        meeting=meeting,
        held_on=held.day.isoformat(),
    )
    return Outcome(
        reference,
        [
            f"Ärende {reference}: möte {meeting} hållet {held.day}; "
            "mall för minnesanteckningar skickas"
        ],
        result,
    )


def record_minutes(
    session: Session,
    municipality_id: int,
    reference: str,
    by: str,
    follow_ups: list[dt.date],
    now: dt.datetime,
) -> Outcome:
    """Follow-up dates from the minutes: each becomes a reminder to the case owner."""
    case = _case(session, municipality_id, reference)
    actor = _owner_or_admin(session, municipality_id, case, by, now)
    if not follow_ups:
        raise CaseInputError("give at least one --follow-up date")
    view = rules_.add_follow_ups(case_view(session, case), follow_ups, now)
    result = _change(
        session,
        case,
        view,
        actor,
        "minutes",
        now,
        "minutes recorded",
        follow_ups=[d.isoformat() for d in sorted(follow_ups)],
    )
    return Outcome(
        reference, [f"Ärende {reference}: {len(follow_ups)} uppföljningsdatum registrerade"], result
    )


def mark_sip(
    session: Session,
    municipality_id: int,
    reference: str,
    by: str,
    follow_up: dt.date | None,
    now: dt.datetime,
) -> Outcome:
    """Mark a case as a SIP (and set or move the plan's follow-up date)."""
    case = _case(session, municipality_id, reference)
    actor = _owner_or_admin(session, municipality_id, case, by, now)
    view = case_view(session, case)
    if view.state is CaseState.CLOSED:
        raise CaseRuleError(f"case {reference} is closed")
    if follow_up is not None and follow_up <= local_date(now):
        raise CaseRuleError(f"the follow-up date must be after today ({follow_up})")
    case.sip = True
    view = replace(view, sip=True, sip_follow_up=follow_up or view.sip_follow_up)
    result = _change(
        session,
        case,
        view,
        actor,
        "sip",
        now,
        "SIP changed",
        follow_up=follow_up.isoformat() if follow_up else None,
    )
    return Outcome(reference, [f"Ärende {reference} är en SIP"], result)


@dataclass(frozen=True)
class SipItemRequest:
    by: str
    goal: str  # staff-only free text
    action: str  # staff-only free text
    responsible: str  # role reference
    due_on: dt.date


def add_sip_item(
    session: Session,
    municipality_id: int,
    reference: str,
    request: SipItemRequest,
    now: dt.datetime,
) -> Outcome:
    case = _case(session, municipality_id, reference)
    actor = _owner_or_admin(session, municipality_id, case, request.by, now)
    municipality = _municipality(session, municipality_id)
    units = set(
        session.scalars(
            select(models.Unit.key).where(models.Unit.municipality_id == municipality_id)
        )
    )
    problem = role_ref_problem(municipality, request.responsible, units)
    if problem:
        raise CaseInputError(f"--responsible: {problem}")
    goal = _free_text(request.goal, "--goal")
    action = _free_text(request.action, "--action")
    view, number = rules_.add_sip_item(
        case_view(session, case), request.responsible, request.due_on, now
    )
    case.sip_items.append(
        models.SipItem(
            number=number,
            goal=goal,
            action=action,
            responsible=request.responsible,
            due_on=request.due_on,
            created_at=now,
        )
    )
    result = _change(
        session,
        case,
        view,
        actor,
        "sip_item",
        now,
        "SIP changed",
        item=number,
        responsible=request.responsible,
        due_on=request.due_on.isoformat(),
    )
    return Outcome(reference, [f"Ärende {reference}: insats {number} tillagd i planen"], result)


def close_case(
    session: Session, municipality_id: int, reference: str, by: str, now: dt.datetime
) -> Outcome:
    """Only the case owner (or an administrator) closes; records who and when."""
    case = _case(session, municipality_id, reference)
    actor = _person(session, municipality_id, by, "--by")
    allowed = actor.id == case.owner_id or _holds(actor, ADMINISTRATOR, None, local_date(now))
    view = rules_.close_case(case_view(session, case), now, allowed)
    case.closed_by_id = actor.id
    result = _change(session, case, view, actor, "closed", now, "case closed")
    return Outcome(
        reference,
        [
            f"Ärende {reference} avslutat av {actor.name}; "
            f"{len(result.cancelled)} väntande meddelande(n) stoppade"
        ],
        result,
    )


def add_note(
    session: Session, municipality_id: int, reference: str, by: str, text: str, now: dt.datetime
) -> Outcome:
    """A note for signed-in staff. It never enters a message, the audit, or a log line."""
    author = _person(session, municipality_id, by, "--by")
    series = _series_of(session, municipality_id, reference)
    session.add(
        models.CaseNote(
            municipality_id=municipality_id,
            series=series,
            reference=reference,
            author_id=author.id,
            at=now,
            text=_free_text(text, "the note"),
        )
    )
    _audit(session, municipality_id, series, reference, author, "note_added", now)
    return Outcome(reference, [f"Anteckning sparad i {reference}"])


def _series_of(session: Session, municipality_id: int, reference: str) -> str:
    for series, model in ((CASE, models.Case), (REPORT, models.Report)):
        found = session.scalar(
            select(model.id).where(
                model.municipality_id == municipality_id, model.reference == reference
            )
        )
        if found is not None:
            return series
    raise NotFoundError("REFERENCE: no report or case with that reference in this municipality")


def show(
    session: Session, municipality_id: int, reference: str, notes: bool = False
) -> dict[str, Any]:
    """Everything about a report or case, for signed-in staff (notes only when asked)."""
    series = _series_of(session, municipality_id, reference)
    municipality = _municipality(session, municipality_id)
    rules = rules_of(municipality)
    data: dict[str, Any] = {"reference": reference, "series": series}
    if series == CASE:
        case = _case(session, municipality_id, reference)
        view = case_view(session, case)
        data.update(
            state=view.state.value,
            owner=view.owner,
            known_on=view.known_on.isoformat(),
            sip=view.sip,
            deadlines=[
                {"meeting": d.meeting, "last_day": d.last_day.isoformat(), "met": d.met}
                for d in rules_.deadlines(view, rules)
            ],
            meetings=[
                {
                    "number": m.number,
                    "state": m.state.value,
                    "start": m.start.astimezone(STOCKHOLM).isoformat(),
                    "location": m.location,
                    "held_on": m.held_on.isoformat() if m.held_on else None,
                }
                for m in view.meetings
            ],
            follow_ups=[d.isoformat() for d in view.follow_ups],
        )
    else:
        report = _report(session, municipality_id, reference)
        data.update(state=report.state, suspected_abuse=report.suspected_abuse)
    messages = session.execute(
        select(models.Notification.purpose, models.Notification.status, models.Notification.due_at)
        .where(
            models.Notification.municipality_id == municipality_id,
            models.Notification.routine_key == series,
            models.Notification.occurrence == reference,
        )
        .order_by(models.Notification.due_at, models.Notification.id)
    )
    data["messages"] = [
        {"purpose": p, "status": s, "due": d.astimezone(STOCKHOLM).isoformat()}
        for p, s, d in messages
    ]
    if notes:
        data["notes"] = [
            {"at": n.at.astimezone(STOCKHOLM).isoformat(), "text": n.text}
            for n in session.scalars(
                select(models.CaseNote)
                .where(
                    models.CaseNote.municipality_id == municipality_id,
                    models.CaseNote.reference == reference,
                )
                .order_by(models.CaseNote.id)
            )
        ]
    return data


def parse_days(values: list[str], what: str) -> list[dt.date]:
    return [_day(v, what) for v in values]


__all__ = ["MeetingState"]
