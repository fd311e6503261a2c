"""The service's reasons for refusing a case or report form, in Swedish, naming the form's
field (`swedish`), and the desk's refusals (`refusal`).

The service's messages (service/cases/, scheduler/cases/rules.py) name the CLI option and the
rule, never the value typed; here each becomes the form's label and the rule in Swedish. A
message without a translation is shown as a general Swedish sentence, never in English
(tests/web/test_cases.py checks that every message the service can raise has one).
"""

from __future__ import annotations

import re

from core.errors import CaseInputError, ConfidentialityError, SamverkanError

# The field a service message starts with (its CLI option), and the form's label for it.
LABELS: dict[str, str] = {
    "--unit": "Anmälande enhet",
    "--reporter": "Anmälare",
    "--district": "Barnets distrikt",
    "a guardian's address": "Vårdnadshavares e-post",
    "--owner": "Processbärare",
    "--owner-role": "Roll",
    "--known-on": "Känt sedan",
    "--school": "Skola",
    "--family-worker": "Familjebehandlare",
    "--staff": "Övrig personal",
    "--pupil": "Elevens e-post",
    "--report": "Anmälan",
    "--given-by": "Vem gav samtycket",
    "--scope": "Vad samtycket gäller",
    "--place": "Plats",
    "date": "Datum",
    "TIME": "Tid",
    "--follow-up": "Uppföljningsdatum",
    "--goal": "Mål",
    "--action": "Insats",
    "--responsible": "Ansvar",
    "the note": "Anteckning",
    "a case participant": "Vårdnadshavare eller elev",
    "--by": "Du",
}

# (pattern in the service's message, Swedish); groups are carried over (dates, references).
PHRASES: list[tuple[str, str]] = [
    (r"no active person with that key", "ingen aktiv person med den nyckeln i kommunen"),
    (r"no unit with that key", "ingen enhet med den nyckeln i kommunen"),
    (r"no district with that key", "inget distrikt med den nyckeln i kommunen"),
    (r"district .* has no intake unit", "Barnets distrikt: distriktet har ingen mottagningsenhet"),
    (r"is not a förskola, grundskola or gymnasium", "enheten är inte en förskola eller skola"),
    (
        r"looks like it holds a personal identity number",
        "ser ut att innehålla ett personnummer och tas inte emot: det skulle skickas med "
        "e-post, och inget om ett barn får skrivas här",
    ),
    (
        r"is not a usable e-mail address",
        "är inte en användbar e-postadress (en adress, som namn@example.se)",
    ),
    (r"must not be empty", "måste fyllas i"),
    (r"is longer than (\d+) characters", r"får vara högst \1 tecken"),
    (r"no place with that key", "välj en av kommunens mötesplatser"),
    (r"not a time", "skriv en tid som TT:MM"),
    (r": give ", "skriv ett datum som ÅÅÅÅ-MM-DD"),
    (
        r"only the case owner or an administrator may close case (\S+)",
        r"Bara processbäraren eller en administratör får avsluta ärende \1",
    ),
    (r"does not exist in Stockholm time", "den tiden finns inte (klockan ställs fram)"),
    (r"unknown role", "okänd roll (skriv t.ex. familjebehandlare@enhet)"),
    (r"unknown unit or unit kind after @", "okänd enhet eller enhetstyp efter @"),
    (r"report (\S+) was received already", r"Anmälan \1 är redan mottagen"),
    (r"cannot be received before", "anmälan kan inte tas emot innan den registrerats"),
    (
        r"case owner must hold one of the roles (.*)",
        r"Processbärare: måste ha någon av rollerna \1",
    ),
    (r"cannot become known in the future \((.*)\)", r"Känt sedan: får inte ligga i framtiden (\1)"),
    (r"case (\S+) has consent already", r"Ärende \1 har redan samtycke"),
    (
        r"the pupil is 18 or older",
        "Elevens eget samtycke: eleven är 18 år eller äldre, så samtycket ska vara elevens eget",
    ),
    (r"has no consent in force", "ärendet har inget gällande samtycke att återkalla"),
    (
        r"consent must be recorded before a meeting is booked",
        "samtycke måste registreras innan ett möte bokas",
    ),
    (
        r"meeting (\d+) was held already; book meeting (\d+)",
        r"Möte: möte \1 är redan hållet; boka möte \2",
    ),
    (r"has no booked meeting to record", "Möte: ärendet har inget bokat möte"),
    (r"has no booked meeting (\d+)", r"Möte: möte \1 är inte bokat"),
    (
        r"meeting (\d+) is recorded as held already",
        r"Möte: möte \1 är redan registrerat som hållet",
    ),
    (
        r"meeting (\d+) cannot be held in the future",
        r"Hölls den: möte \1 kan inte hållas i framtiden",
    ),
    (
        r"cannot be held before the case became known",
        "Hölls den: mötet kan inte ha hållits innan ärendet blev känt",
    ),
    (
        r"minutes belong to a meeting that was held",
        "minnesanteckningar hör till ett hållet möte: registrera först att mötet hölls",
    ),
    (
        r"follow-up date must be after today \((.*)\)",
        r"Uppföljningsdatum: måste vara efter i dag (\1)",
    ),
    (r"is not a SIP", "ärendet är ingen SIP: markera det som SIP först"),
    (
        r"an action's time must be after today \((.*)\)",
        r"Klart senast: måste vara efter i dag (\1)",
    ),
    (r"case (\S+) is closed", r"Ärende \1 är avslutat"),
    (r"meetings are numbered from 1", "Möte: mötena numreras från 1"),
    (r"(.+) has already passed", r"Datum: \1 har redan passerat"),
    (r"(\S+) is not a working day \((.*)\)", r"Datum: \1 är inte en arbetsdag (\2)"),
    (r"book meeting (\d+) before meeting (\d+)", r"Möte: boka möte \1 före möte \2"),
    (r"meeting (\d+) must come after meeting (\d+)", r"Datum: möte \1 måste ligga efter möte \2"),
    (r"consent cannot be given in the future", "Samtycket lämnades: får inte ligga i framtiden"),
    (r"give at least one --follow-up date", "Uppföljningsdatum: ange minst ett datum"),
    (
        r"concerns suspected violence or sexual abuse",
        "anmälan gäller misstänkt våld eller sexuella övergrepp: inga vårdnadshavare, elever "
        "eller andra utanför personalen får tas med",
    ),
]


def swedish(exc: SamverkanError) -> str:
    """The service's reason in Swedish, naming the form's field; never a value typed."""
    text = str(exc)
    label = next(
        (LABELS[o] for o in sorted(LABELS, key=len, reverse=True) if text.startswith(o)), None
    )
    for pattern, words in PHRASES:
        found = re.search(pattern, text)
        if found is not None:
            why = found.expand(words)
            if label and ":" not in why.split(" ")[0]:
                return f"{label}: {why}"
            return why[0].upper() + why[1:]
    if isinstance(exc, ConfidentialityError):
        return "Uppgiften kan inte tas emot: inget om ett barn får skickas med e-post."
    if isinstance(exc, CaseInputError):
        return f"{label or 'En uppgift'}: uppgiften kan inte användas."
    return "Det går inte att göra så i ärendet just nu."


def refusal(text: str) -> str:
    """Why the desk refused (service/permissions.py `refusal`), in Swedish."""
    if "close" in text:
        return "Bara processbäraren eller en administratör får avsluta ärendet."
    if "intake unit" in text:
        return "Bara mottagningsenheten som anmälan gick till tar emot den."
    if "flag" in text:
        return "Bara anmälaren, mottagningsenheten eller en administratör får markera anmälan."
    if "processbäraren" in text:
        return "Bara processbäraren eller en administratör får göra det i ärendet."
    return "Du har inte behörighet att göra det här."
