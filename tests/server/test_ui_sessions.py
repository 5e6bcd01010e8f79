"""The web UI's login: the form, the session cookie the pages and the API accept, CSRF on
changes, logout, and that basic auth and the API's 401s are as they were (real broker, real
HTTP; the browser tests in tests/ui drive the same through Chromium)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import yarl

from jackalope import Broker
from jackalope.http.sessions import Sessions
from tests.server.http_client import auth


class Client:
    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.http, self.url = http, url

    async def login(
        self, user: str = "guest", password: str = "guest", next_: str = "/"
    ) -> aiohttp.ClientResponse:
        async with self.http.post(
            self.url + "/login",
            data={"username": user, "password": password, "next": next_},
            allow_redirects=False,
        ) as r:
            await r.read()
            return r

    async def page(self, path: str) -> tuple[int, str]:
        async with self.http.get(self.url + path, allow_redirects=False) as r:
            return r.status, await r.text()

    async def csrf(self) -> str:
        _, text = await self.page("/")
        found = re.search(r'name="csrf-token" content="([^"]*)"', text)
        assert found is not None
        return found.group(1)


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[Broker]:
    async with Broker(tmp_path / "data", kafka_port=-1) as b:
        yield b


@pytest.fixture
async def client(broker: Broker) -> AsyncIterator[Client]:
    # unsafe: keep cookies for an IP address host (127.0.0.1)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        yield Client(http, broker.http_url)


async def test_pages_redirect_to_login_and_the_api_stays_401_json(client: Client) -> None:
    status, _ = await client.page("/queues?x=1")
    assert status == 303
    async with client.http.get(client.url + "/queues?x=1", allow_redirects=False) as r:
        location = yarl.URL(r.headers["Location"])
        assert (location.path, location.query["next"]) == ("/login", "/queues?x=1")
    async with client.http.get(client.url + "/api/whoami") as r:
        assert r.status == 401
        assert await r.json() == {"error": "not_authorized", "reason": "Not_Authorized"}
    status, text = await client.page("/login")
    assert status == 200 and 'name="password"' in text
    async with client.http.get(client.url + "/static/ui.js") as r:
        assert r.status == 200


async def test_login_sets_a_strict_httponly_cookie_that_pages_and_api_accept(client: Client) -> None:
    response = await client.login(next_="/users")
    assert response.status == 303 and response.headers["Location"] == "/users"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("jackalope_session=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    status, text = await client.page("/users")
    assert status == 200 and "<h1>Users</h1>" in text and "guest" in text
    async with client.http.get(client.url + "/api/whoami") as r:
        assert (r.status, await r.json()) == (200, {"name": "guest", "tags": ["administrator"]})


@pytest.mark.parametrize(
    ("user", "password", "message"),
    [
        ("guest", "wrong", "wrong username or password"),
        ("nobody", "guest", "wrong username or password"),
        ("plain", "secret", "Not management user"),
    ],
)
async def test_a_refused_login_shows_why_and_opens_no_session(
    client: Client, user: str, password: str, message: str
) -> None:
    async with client.http.put(
        client.url + "/api/users/plain",
        json={"password": "secret", "tags": ""},
        headers=auth("guest", "guest"),
    ) as r:
        assert r.status == 201
    response = await client.login(user, password)
    assert response.status == 401 and "Set-Cookie" not in response.headers
    async with client.http.post(
        client.url + "/login", data={"username": user, "password": password, "next": "/"}
    ) as r:
        assert message in await r.text()
    assert (await client.page("/"))[0] == 303


async def test_changes_with_the_cookie_need_the_csrf_token(client: Client) -> None:
    await client.login()
    async with client.http.put(client.url + "/api/vhosts/v1", json={}) as r:
        assert r.status == 403
        assert (await r.json())["error"] == "forbidden"
    async with client.http.put(client.url + "/api/vhosts/v1", json={}, headers={"X-CSRF-Token": "nope"}) as r:
        assert r.status == 403
    async with client.http.put(
        client.url + "/api/vhosts/v1", json={}, headers={"X-CSRF-Token": await client.csrf()}
    ) as r:
        assert r.status == 201
    async with client.http.get(client.url + "/api/vhosts/v1") as r:
        assert r.status == 200


async def test_basic_auth_is_unchanged_and_needs_no_csrf_token(client: Client) -> None:
    async with client.http.put(client.url + "/api/vhosts/v2", json={}, headers=auth("guest", "guest")) as r:
        assert r.status == 201
    async with client.http.get(client.url + "/api/whoami", headers=auth("guest", "nope")) as r:
        assert r.status == 401 and r.headers["WWW-Authenticate"] == 'Basic realm="Jackalope"'
    assert (await client.page("/"))[0] == 303  # basic auth on the API call opened no session


async def test_logout_ends_the_session_and_needs_the_token(client: Client) -> None:
    await client.login()
    async with client.http.post(
        client.url + "/logout", data={"csrf_token": "nope"}, allow_redirects=False
    ) as r:
        assert r.status == 403
    assert (await client.page("/"))[0] == 200
    old = client.http.cookie_jar.filter_cookies(yarl.URL(client.url))["jackalope_session"].value
    async with client.http.post(
        client.url + "/logout", data={"csrf_token": await client.csrf()}, allow_redirects=False
    ) as r:
        assert r.status == 303 and r.headers["Location"] == "/login"
    assert (await client.page("/"))[0] == 303
    async with client.http.get(client.url + "/api/whoami", cookies={"jackalope_session": old}) as r:
        assert r.status == 401  # the old token is gone on the server too


async def test_deleting_the_user_or_its_tag_ends_its_sessions(client: Client) -> None:
    async with client.http.put(
        client.url + "/api/users/ops",
        json={"password": "pw", "tags": "monitoring"},
        headers=auth("guest", "guest"),
    ) as r:
        assert r.status == 201
    await client.login("ops", "pw")
    assert (await client.page("/"))[0] == 200
    async with client.http.put(
        client.url + "/api/users/ops", json={"password": "pw", "tags": ""}, headers=auth("guest", "guest")
    ) as r:
        assert r.status == 204
    assert (await client.page("/"))[0] == 303
    async with client.http.get(client.url + "/api/whoami") as r:
        assert r.status == 401


async def test_a_login_goes_back_only_to_this_site(client: Client) -> None:
    for target in ("//evil.example/", "https://evil.example/", "/\\evil"):
        response = await client.login(next_=target)
        assert response.headers["Location"] == "/"


async def test_pages_show_the_apis_refusals(client: Client) -> None:
    await client.login()
    status, text = await client.page("/exchanges/nope/x")
    assert status == 404 and "Not Found" in text
    async with client.http.put(
        client.url + "/api/users/watcher",
        json={"password": "pw", "tags": "monitoring"},
        headers=auth("guest", "guest"),
    ) as r:
        assert r.status == 201
    await client.login("watcher", "pw")
    status, text = await client.page("/users")
    assert status == 200 and "Not administrator user" in text  # the table says why it is empty


def test_sessions_expire_and_keep_a_bound() -> None:
    now = [0.0]
    sessions = Sessions(lifetime=10, clock=lambda: now[0])
    session = sessions.open("guest")
    assert sessions.get(session.token) == session
    assert sessions.get("forged") is None and sessions.get(None) is None
    assert (
        session.csrf_matches(session.csrf)
        and not session.csrf_matches("x")
        and not session.csrf_matches(None)
    )
    now[0] = 10.0
    assert sessions.get(session.token) is None and len(sessions) == 0
