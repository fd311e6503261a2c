"""Sign-in through OpenID Connect (web/oidc.py) against a real provider (node oidc-provider).

The app here is a small FastAPI app with the OIDC routes and a stand-in session cookie, on a
SQLite database with two municipalities loaded: Exempelby (profiles/exempel.yaml), whose people
the provider signs in, and Lilla kommunen (tests/data/minimal.yaml).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from fastapi.testclient import TestClient
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.orm import Session, sessionmaker

from core.errors import SettingsError
from core.settings import load_settings
from models.db import make_engine, make_sessionmaker
from tests.fixtures.oidc import (
    TESTSERVER_CALLBACK,
    OidcProvider,
    ProviderLogin,
    callback_parameters,
    people_database,
)
from web.oidc import COOKIE, OidcClient, OidcConfig, SignedInPerson, oidc_router, safe_next

SECRET = "en-hemlighet-bara-for-testerna"
EVA = "eva.sjoberg@exempelby.se"  # elevhälsochef in Exempelby


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(people_database(tmp_path_factory.mktemp("oidc-db")))
    try:
        yield make_sessionmaker(engine)
    finally:
        engine.dispose()


def config_for(provider: OidcProvider) -> OidcConfig:
    return OidcConfig(
        issuer=provider.issuer,
        client_id=provider.client_id,
        client_secret=provider.client_secret,
        redirect_url=TESTSERVER_CALLBACK,
        municipality="exempel",
    )


@pytest.fixture
def client(oidc_provider: OidcProvider, sessions: sessionmaker[Session]) -> Iterator[TestClient]:
    signer = URLSafeSerializer(SECRET, salt="test-session")

    def sign_in(request: Request, person: SignedInPerson, next_path: str) -> Response:
        response = RedirectResponse(next_path, status_code=303)
        response.set_cookie("test_session", signer.dumps(person.key))
        return response

    app = FastAPI()
    app.include_router(
        oidc_router(
            config_for(oidc_provider),
            secret=SECRET,
            session_factory=sessions,
            sign_in=sign_in,
            secure_cookies=False,
        )
    )

    @app.get("/vem")
    def who(request: Request) -> Response:
        try:
            return PlainTextResponse(signer.loads(request.cookies.get("test_session", "")))
        except BadSignature:
            return PlainTextResponse("ingen", status_code=401)

    with TestClient(app, follow_redirects=False) as test_client:
        yield test_client


@pytest.fixture
def person(oidc_provider: OidcProvider) -> Iterator[ProviderLogin]:
    login = ProviderLogin(oidc_provider)
    try:
        yield login
    finally:
        login.close()


def start(client: TestClient, next_path: str = "/vem") -> str:
    response = client.get("/oidc/login", params={"next": next_path})
    assert response.status_code == 303
    return response.headers["location"]


def signed_in_as(client: TestClient) -> str | None:
    response = client.get("/vem")
    return response.text if response.status_code == 200 else None


def flow_of(client: TestClient, provider: OidcProvider) -> dict[str, str]:
    return OidcClient(config_for(provider), SECRET).open(client.cookies.get(COOKIE))


def reseal(client: TestClient, provider: OidcProvider, **changes: str) -> None:
    flow = flow_of(client, provider) | changes
    sealed = OidcClient(config_for(provider), SECRET).seal(flow)
    client.cookies.set(COOKIE, sealed, domain="testserver.local", path="/oidc")


def test_a_person_of_the_municipality_signs_in_and_goes_on(
    client: TestClient, person: ProviderLogin
) -> None:
    back = person.authorize(start(client, "/arshjul"), EVA)
    response = client.get(callback_parameters(back))
    assert response.status_code == 303
    assert response.headers["location"] == "/arshjul"
    assert signed_in_as(client) == "eva-sjoberg"


def test_the_address_is_matched_without_regard_to_case(
    client: TestClient, person: ProviderLogin
) -> None:
    back = person.authorize(start(client), "Eva.Sjoberg@EXEMPELBY.se")
    assert client.get(callback_parameters(back)).status_code == 303
    assert signed_in_as(client) == "eva-sjoberg"


def test_the_request_carries_the_s256_challenge_of_the_kept_verifier(
    client: TestClient, oidc_provider: OidcProvider
) -> None:
    query = parse_qs(urlsplit(start(client)).query)
    verifier = flow_of(client, oidc_provider)["verifier"]
    digest = hashlib.sha256(verifier.encode()).digest()
    assert query["code_challenge_method"] == ["S256"]
    assert query["code_challenge"] == [base64.urlsafe_b64encode(digest).rstrip(b"=").decode()]


def test_the_provider_refuses_a_request_without_pkce(
    client: TestClient, person: ProviderLogin
) -> None:
    parts = urlsplit(start(client))
    query = {
        key: values[0]
        for key, values in parse_qs(parts.query).items()
        if not key.startswith("code_challenge")
    }
    back = person.authorize(urlunsplit(parts._replace(query=urlencode(query))), EVA)
    assert parse_qs(urlsplit(back).query)["error"] == ["invalid_request"]
    assert client.get(callback_parameters(back)).status_code == 403
    assert signed_in_as(client) is None


def test_a_wrong_code_verifier_is_refused_by_the_provider(
    client: TestClient, person: ProviderLogin, oidc_provider: OidcProvider
) -> None:
    authorization_url = start(client)
    reseal(client, oidc_provider, verifier="x" * 64)
    back = person.authorize(authorization_url, EVA)
    response = client.get(callback_parameters(back))
    assert response.status_code == 403
    assert signed_in_as(client) is None


def test_a_state_that_does_not_match_is_refused(client: TestClient, person: ProviderLogin) -> None:
    back = person.authorize(start(client), EVA)
    parts = urlsplit(back)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    query["state"] = "en-annan-state"
    response = client.get(f"{parts.path}?{urlencode(query)}")
    assert response.status_code == 400
    assert signed_in_as(client) is None


def test_an_answer_from_another_issuer_is_refused(
    client: TestClient, person: ProviderLogin
) -> None:
    back = person.authorize(start(client), EVA)
    parts = urlsplit(back)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    assert "iss" in query  # the provider names itself (RFC 9207)
    query["iss"] = "https://annan-leverantor.example"
    assert client.get(f"{parts.path}?{urlencode(query)}").status_code == 400
    assert signed_in_as(client) is None


def test_an_address_the_provider_has_not_verified_is_refused(
    client: TestClient, person: ProviderLogin
) -> None:
    back = person.authorize(start(client), f"overifierad:{EVA}")
    assert client.get(callback_parameters(back)).status_code == 403
    assert signed_in_as(client) is None


def test_a_callback_without_the_flow_cookie_is_refused(
    client: TestClient, person: ProviderLogin
) -> None:
    back = person.authorize(start(client), EVA)
    client.cookies.clear()
    assert client.get(callback_parameters(back)).status_code == 400
    assert signed_in_as(client) is None


def test_an_id_token_for_another_nonce_is_refused(
    client: TestClient, person: ProviderLogin, oidc_provider: OidcProvider
) -> None:
    authorization_url = start(client)
    reseal(client, oidc_provider, nonce="en-annan-nonce")
    back = person.authorize(authorization_url, EVA)
    assert client.get(callback_parameters(back)).status_code == 403
    assert signed_in_as(client) is None


def test_an_unknown_address_is_refused_without_repeating_it(
    client: TestClient, person: ProviderLogin
) -> None:
    back = person.authorize(start(client), "okand.person@exempelby.se")
    response = client.get(callback_parameters(back))
    assert response.status_code == 403
    assert "okand" not in response.text
    assert "inte till någon person" in response.text
    assert signed_in_as(client) is None


def test_a_person_of_another_municipality_is_refused(
    client: TestClient, person: ProviderLogin
) -> None:
    back = person.authorize(start(client), "anna@liten.se")  # elevhälsochef in Lilla kommunen
    assert client.get(callback_parameters(back)).status_code == 403
    assert signed_in_as(client) is None


def test_the_flow_cookie_is_single_use(client: TestClient, person: ProviderLogin) -> None:
    back = person.authorize(start(client), EVA)
    assert client.get(callback_parameters(back)).status_code == 303
    client.cookies.delete("test_session")
    assert client.get(callback_parameters(back)).status_code == 400
    assert signed_in_as(client) is None


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("/arshjul?ar=2027", "/arshjul?ar=2027"),
        ("https://annan.example/", "/"),
        ("//annan.example/", "/"),
        ("/\\annan.example", "/"),
        ("arshjul", "/"),
    ],
)
def test_only_a_local_path_is_kept_as_the_next_page(given: str, kept: str) -> None:
    assert safe_next(given) == kept


def test_no_oidc_setting_means_passwords_only() -> None:
    assert OidcConfig.from_settings(load_settings({})) is None


def test_a_half_configuration_names_what_is_missing() -> None:
    settings = load_settings(
        {"SAMVERKAN_OIDC_ISSUER": "https://login.example.se", "SAMVERKAN_OIDC_CLIENT_ID": "x"}
    )
    with pytest.raises(SettingsError) as caught:
        OidcConfig.from_settings(settings)
    assert "SAMVERKAN_OIDC_CLIENT_SECRET" in str(caught.value)
    assert "SAMVERKAN_OIDC_MUNICIPALITY" in str(caught.value)
    assert "SAMVERKAN_OIDC_ISSUER" not in str(caught.value)


def test_a_plain_http_provider_is_refused_unless_local() -> None:
    values = {
        "SAMVERKAN_OIDC_ISSUER": "http://login.example.se",
        "SAMVERKAN_OIDC_CLIENT_ID": "samverkan",
        "SAMVERKAN_OIDC_CLIENT_SECRET": "hemligt",
        "SAMVERKAN_OIDC_REDIRECT_URL": "https://samverkan.example.se/oidc/callback",
        "SAMVERKAN_OIDC_MUNICIPALITY": "exempel",
    }
    with pytest.raises(SettingsError, match="SAMVERKAN_OIDC_ISSUER: must be an https://"):
        OidcConfig.from_settings(load_settings(values))
    local = values | {"SAMVERKAN_OIDC_ISSUER": "http://127.0.0.1:8080"}
    config = OidcConfig.from_settings(load_settings(local))
    assert config is not None and config.municipality == "exempel"
