"""What each message is given, and made-up data to preview it on.

`fields_of` is docs/template-context.md's tables in code: the top-level fields a message's
template is given, per kind of message (routine, case or report, the failure digest, the
answers summary); an override may use exactly those (`service.texts`). `sample` (and its
`variants`, each nullable field left empty in turn) names no real person: `*@exempel.invalid`,
`Exempelsson`, `000-00 00 00`.
"""

from __future__ import annotations

import copy
from typing import Any

# --- the fields each kind of message is given (docs/template-context.md) -----------------------

ROUTINE_FIELDS = frozenset(
    {
        "municipality",
        "sender",
        "routine",
        "purpose",
        "occurrence",
        "due",
        "meeting",
        "recipient",
        "owners",
        "reply_to",
        "attachments",
    }
)
CASE_FIELDS = ROUTINE_FIELDS | {"reference", "facts", "report", "case"}
DIGEST_FIELDS = frozenset(
    {"municipality", "sender", "recipient", "routine", "purpose", "window", "failures"}
)
# A case meeting's summary uses the same template, with the case's neutral reference and the
# participants outside the staff only counted (scheduler/answers.py).
SUMMARY_FIELDS = ROUTINE_FIELDS | {
    "invited_count",
    "answered_count",
    "not_answered",
    "booked",
    "case_meeting",
    "others_not_answered",
    "missing_count",
}

# name -> what the message is for (Swedish, shown on /texter)
ABOUT: dict[str, str] = {
    "samverkansmote-boka": "Påminner den som kallar om att boka samverkansmötet",
    "samverkansmote-kallelse": "Kallelse till samverkansmötet skola–socialtjänst",
    "samverkansmote-obokat": "Till samordnaren när ett samverkansmöte aldrig bokades",
    "styrgrupp-kallelse": "Kallelse till styrgruppens möte om samverkan",
    "styrning-paminnelse": "Påminnelse om en styrningsuppgift med sista dag",
    "utvardering-underlag": "Ber om synpunkter inför utvärderingen av samverkan",
    "utvardering-paminnelse": "Påminnelse om att utvärderingen ska vara klar",
    "lasarsstart-forbered": "Förbereder utskicket om föräldrastöd inför läsårsstart",
    "lasarsstart-material": "Material om föräldrastöd till rektorerna",
    "foraldramote-ifo": "Bjud in familjeteamet till ett föräldramöte",
    "mote-avbokad": "Till den som inte längre är kallad till ett möte",
    "mote-installt": "Ett bokat möte är inställt",
    "svar-sammanstallning": "Till den som kallat: vilka som svarat på kallelsen",
    "fel-sammanstallning": (
        "Daglig sammanställning till samordnaren om meddelanden som inte kom fram"
    ),
    "anmalan-registrerad": "Kvitto till den som gjort en orosanmälan",
    "anmalan-mottagning": "Till mottagningsenheten: en ny orosanmälan",
    "anmalan-mottagen": "Till anmälaren: anmälan är mottagen",
    "anmalan-aterkoppling": "Till anmälaren: dags att be om återkoppling",
    "anmalan-vardnadshavare": "Information till vårdnadshavare om en anmälan",
    "arende-oppnat": "Ett samverkansärende är öppnat",
    "arende-frist": "Påminnelse om sista dag för ett möte i ärendet",
    "arende-forsenad": "Ett möte i ärendet hölls inte i tid",
    "arende-forsenad-chef": "Till chefen: ett ärendes möte är försenat",
    "arende-kallelse": "Kallelse till samverkansmöte i ett ärende",
    "arende-installt": "Ett möte i ärendet är inställt",
    "arende-minnesanteckningar": "Mall för minnesanteckningar efter ett möte i ärendet",
    "arende-uppfoljning": "Påminnelse om uppföljning i ärendet",
    "arende-sip": "Påminnelse om en insats i en SIP",
    "arende-sip-uppfoljning": "Påminnelse om uppföljning av en SIP",
    "arende-aterkallat": "Samtycket i ärendet är återkallat",
    "arende-avslutat": "Ärendet är avslutat",
}


def fields_of(name: str) -> frozenset[str]:
    """The top-level fields the message `name` is given (and so any override of it)."""
    if name.startswith(("anmalan-", "arende-")):
        return CASE_FIELDS
    if name == "fel-sammanstallning":
        return DIGEST_FIELDS
    if name == "svar-sammanstallning":
        return SUMMARY_FIELDS
    return ROUTINE_FIELDS


# --- sample data: made up, no real person ------------------------------------------------------

_SENDER = {"name": "Samverkan skola–socialtjänst", "email": "samverkan@exempel.invalid"}
_OWNER = {"name": "Alva Exempelsson", "email": "alva@exempel.invalid", "role": "Samordnare"}
_AGENDA = ["Uppföljning av föregående möte", "Behovsanalys", "Tid för nytt möte"]
_MEETING: dict[str, Any] = {
    "start": "2027-04-13T13:00:00+02:00",
    "end": "2027-04-13T15:00:00+02:00",
    "location": "Stadshuset, sal 1, Exempelgatan 1",
    "place": "stadshuset",
    "video": None,
    "agenda": list(_AGENDA),
    "sequence": 0,
    "number": 1,
    "method": "REQUEST",
}


def _routine_sample() -> dict[str, Any]:
    return {
        "municipality": "Exempelby kommun",
        "sender": dict(_SENDER),
        "routine": {
            "key": "exempel",
            "name": "Samverkansmöte skola–socialtjänst",
            "kind": "meeting",
            "description": "Ett exempel på rutinens beskrivning.",
        },
        "purpose": "exempel",
        "occurrence": {
            "key": "2027",
            "date": "2027-04-13",
            "window_end": "2027-04-30",
            "month": 4,
            "school_year": "2027/28",
        },
        "due": {"date": "2027-03-23", "days_left": 21},
        "meeting": dict(_MEETING),
        "recipient": {
            "name": "Bo Exempelsson",
            "roles": ["Rektor"],
            "units": [{"name": "Exempelskolan F–9", "kind": "grundskola", "stages": []}],
        },
        "owners": [{"name": _OWNER["name"], "role": _OWNER["role"]}],
        "reply_to": dict(_OWNER),
        "attachments": ["exempel.pdf"],
    }


def _case_sample(name: str) -> dict[str, Any]:
    reference = "Anmälan 2027-0001" if name.startswith("anmalan-") else "Ärende 2027-0001"
    return {
        **_routine_sample(),
        "routine": {"key": "case", "name": "Samverkansmöte i ärende", "kind": "case"},
        "occurrence": {"key": "2027-0001", "date": None},
        "reference": reference,
        "recipient": {
            "name": "Bo Exempelsson",
            "roles": ["Rektor"],
            "units": [{"name": "Exempelskolan F–9", "kind": "grundskola"}],
            "external": False,
        },
        "facts": {
            "urgent": False,
            "wants_feedback": True,
            "feedback_on": "2027-05-04",
            "feedback_after": "två veckor",
            "first_deadline": "2027-04-30",
            "known_on": "2027-04-01",
            "consent": True,
            "sip": False,
            "meeting": 1,
            "deadline": "2027-04-30",
            "runs_from": "2027-04-01",
            "held_on": "2027-04-13",
            "follow_up": "2027-06-01",
            "item": 1,
            "due_on": "2027-05-15",
            "items": 1,
        },
        "report": {
            "reference": "Anmälan 2027-0001",
            "unit": "Exempelskolan F–9",
            "reporter": "Bo Exempelsson",
            "intake": {"name": "Mottagningsenheten Exempel", "phone": "000-00 00 00"},
            "registered_on": "2027-04-01",
            "received": {"name": "Cilla Exempelsson", "on": "2027-04-02"},
        },
        "case": {
            "reference": "Ärende 2027-0001",
            "owner": dict(_OWNER),
            "known_on": "2027-04-01",
            "state": "active",
            "sip": False,
            "adult_pupil": False,
            "agenda": list(_AGENDA),
            "deadlines": [{"meeting": 1, "last_day": "2027-04-30", "met": False}],
        },
    }


def _digest_sample() -> dict[str, Any]:
    base = _routine_sample()
    return {
        "municipality": base["municipality"],
        "sender": base["sender"],
        "recipient": {"name": _OWNER["name"], "roles": ["Samordnare"], "units": []},
        "routine": {"name": "Meddelanden som inte kom fram"},
        "purpose": "digest",
        "window": {"from": "2027-04-12T07:00:00+02:00", "to": "2027-04-13T07:00:00+02:00"},
        "failures": [
            {
                "routine": "Utvärdering av samverkan",
                "purpose": "paminnelse-30",
                "address": "bo@exempel.invalid",
                "attempts": 3,
                "failed_at": "2027-04-12T09:30:00+02:00",
                "error": "550 5.1.1 mailbox unavailable",
            }
        ],
    }


def _summary_sample() -> dict[str, Any]:
    return {
        **_routine_sample(),
        "meeting": None,
        "booked": {"start": _MEETING["start"], "end": _MEETING["end"], "sequence": 0},
        "invited_count": 3,
        "answered_count": 2,
        "not_answered": [{"name": "Bo Exempelsson", "roles": ["Rektor"]}],
    }


# Fields that may be None in a real message: an override must render wherever its default does.
NULLABLE = (
    ("meeting",),
    ("reply_to",),
    ("routine", "description"),
    ("occurrence", "window_end"),
    ("occurrence", "month"),
    ("occurrence", "school_year"),
    ("meeting", "location"),
    ("meeting", "video"),
    ("report", "received"),
    ("facts", "feedback_on"),
)


def variants(name: str) -> list[dict[str, Any]]:
    """The sample, then the sample with each nullable field it has set to None."""
    base = sample(name)
    found = [base]
    for path in NULLABLE:
        context = copy.deepcopy(base)
        holder: Any = context
        for key in path[:-1]:
            holder = holder.get(key) if isinstance(holder, dict) else None
        if isinstance(holder, dict) and holder.get(path[-1]) is not None:
            holder[path[-1]] = None
            found.append(context)
    return found


def sample(name: str) -> dict[str, Any]:
    """Made-up data to preview the message `name` on: every field its kind is given."""
    fields = fields_of(name)
    if fields is CASE_FIELDS:
        return _case_sample(name)
    if fields is DIGEST_FIELDS:
        return _digest_sample()
    if fields is SUMMARY_FIELDS:
        return _summary_sample()
    return _routine_sample()
