"""`samverkan api-token …`: tokens of the JSON API (/api/), one per system.

Like the other commands: parse, call the service (service/apitokens.py), print. A token is
printed once, when made; the database keeps only its SHA-256 digest. Output never repeats a
typed value.
"""

from __future__ import annotations

from typing import Annotated

import typer

from samverkan.cli import common

app = typer.Typer(help="Tokens of the JSON API (/api/), one per system.", no_args_is_help=True)

System = Annotated[
    str,
    typer.Argument(
        help="The system's name, e.g. e-tjanst or arendesystem (a–z, 0–9, . _ -).",
        metavar="SYSTEM-NAME",
    ),
]


@app.command("new")
def token_new(
    system: System,
    as_person: Annotated[
        str,
        typer.Option("--as", help="Person key of the staff member the system acts as."),
    ],
    municipality: common.MunicipalityOption = None,
) -> None:
    """Make a token for a system acting as a person; prints it once (only a hash is kept)."""
    from models.db import transaction
    from service.apitokens import new_token

    common.prepare(common.settings())
    moment = common.now(None)
    with transaction(common.runtime().sessions) as session:
        town = common.municipality_id(session, municipality)
        token = new_token(session, town, as_person, system, moment)
    common.console.print("API token ready (shown only now); send it as", highlight=False)
    common.console.print("Authorization: Bearer <token>", highlight=False)
    common.console.print(token, highlight=False)


@app.command("revoke")
def token_revoke(system: System, municipality: common.MunicipalityOption = None) -> None:
    """Revoke every token of a system: its requests are refused (401) at once."""
    from models.db import transaction
    from service.apitokens import revoke_tokens

    common.prepare(common.settings())
    moment = common.now(None)
    with transaction(common.runtime().sessions) as session:
        count = revoke_tokens(
            session, common.municipality_id(session, municipality), system, moment
        )
    common.console.print(f"{count} API token(s) revoked", highlight=False)
