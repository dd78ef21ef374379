"""Input that must not stop the service or open a door: oversized user names,
passwords and statements are refused with clear errors while the server
goes on answering others (the audit log keeps them as a prefix and a hash);
password guessing is throttled per account and per client address over
Flight SQL and the portal; a portal CSRF token works only in its own
session or pre-session; redirect targets are kept on the site.

The gRPC API is called with grpcio and hand-built protobuf messages (no
generated code). The portal is reached with Playwright's Chromium and, where
a test needs to choose its client address (127.0.0.x on loopback) or send
what no browser sends, with plain HTTP requests.
"""

from __future__ import annotations

import http.client
import re
import urllib.parse

import grpc
import pyarrow as pa
import pyarrow.flight as flight
import pytest

import flightsql
from conftest import Project, Server, error_of, password, query
from test_portal import browser, signed_in, visitor  # noqa: F401 (the browser fixture)

USERS = {"hana": "researcher", "ivan": "researcher", "otto": "operator"}
PROJECTS = {"h1": Project("h1", ("hana", "ivan"))}
# The throttling test's server: guessing there locks its accounts and 127.0.0.1.
THROTTLE_USERS = {"vera": "researcher", "walt": "researcher", "xena": "researcher", "yuri": "researcher"}
TOO_MANY = re.compile(r"too many login attempts for this account or from this address; retry after \d+ s")
# The portal's sign-in page says it in the visitor's language (Japanese).
PORTAL_TOO_MANY = re.compile("ログインの試行が多すぎます")
HASHED = re.compile(r"… \[(\d+) bytes, sha256 [0-9a-f]{64}\]$")
COUNT_SQL = "SELECT sex, COUNT(DISTINCT person_id) AS persons FROM ndb.receipts GROUP BY sex"


@pytest.fixture(scope="module")
def server(start_server) -> Server:
    return start_server("hardening", USERS, PROJECTS)


@pytest.fixture(scope="module")
def throttled(start_server) -> Server:
    return start_server("throttle", THROTTLE_USERS, {})


def api_login(server: Server, user: str, secret: str) -> bytes:
    """`enclave.v1.Session/Login` over gRPC: the raw LoginResponse."""
    request = flightsql._field(1, user.encode()) + flightsql._field(2, secret.encode())
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        login = channel.unary_unary("/enclave.v1.Session/Login")
        return login(request, timeout=60)


def api_error(server: Server, user: str, secret: str) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as error:
        api_login(server, user, secret)
    return error.value


def handshake_error(server: Server, user: bytes, secret: bytes) -> str:
    # pyarrow raises ArrowInvalid for INVALID_ARGUMENT, Flight errors for the rest.
    with pytest.raises((flight.FlightError, pa.ArrowInvalid)) as error:
        flight.FlightClient(server.uri).authenticate_basic_token(user, secret)
    return str(error.value)


class PortalClient:
    """HTTP requests to a server's portal from a chosen loopback address,
    cookies kept as a browser keeps them, redirects not followed."""

    def __init__(self, server: Server, source: str = "127.0.0.1"):
        self.port, self.source, self.cookies = server.portal_port, source, {}

    def request(self, method: str, path: str, form: dict | None = None) -> tuple[int, http.client.HTTPMessage, str]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120,
                                                source_address=(self.source, 0))
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else {}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        text = response.read().decode(errors="replace")
        connection.close()
        for cookie in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = cookie.partition("=")
            if "Max-Age=0" in cookie:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = rest.split(";")[0]
        return response.status, response.headers, text

    def csrf(self) -> str:
        """The CSRF token of the sign-in form (of this client's session or pre-session)."""
        _, _, page = self.request("GET", "/login")
        return re.search(r'name="csrf" value="([^"]+)"', page).group(1)

    def sign_in(self, user: str, secret: str, next: str = "") -> tuple[int, http.client.HTTPMessage, str]:
        form = {"csrf": self.csrf(), "next": next, "user": user, "password": secret}
        return self.request("POST", "/login", form)


def test_oversized_names_passwords_and_statements_are_refused_and_the_server_goes_on(server: Server):
    # A 2 MB user name does not fit a login request: refused before it is read.
    huge = api_error(server, "n" * 2_000_000, "whatever-password")
    assert huge.code() == grpc.StatusCode.OUT_OF_RANGE, huge
    assert "message length too large" in huge.details() and "the limit is: 16384 bytes" in huge.details()
    # A long name that fits the request, over the API and the Flight handshake.
    long = api_error(server, "n" * 10_000, "whatever-password")
    assert long.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "user names are 1-64 characters of letters, digits" in long.details()
    assert "user names are 1-64 characters" in handshake_error(server, b"n" * 10_000, b"whatever-password")
    # A long password is refused before it is hashed.
    secret = api_error(server, "hana", "p" * 4096)
    assert secret.code() == grpc.StatusCode.INVALID_ARGUMENT and "at most 1024 bytes" in secret.details()
    # A 2 MB name through the portal's sign-in form: refused unread.
    portal = PortalClient(server)
    status, _, page = portal.sign_in("n" * 2_000_000, "whatever-password")
    assert status == 400 and "フォームは 256 KiB までです" in page  # the visitor's language: Japanese
    # A 1.3 MB statement.
    long_sql = "SELECT '" + "x" * 1_300_000 + "' AS x"
    with server.connect("hana") as conn:
        assert "refused (input-limit): statements are limited to 512 KiB" in error_of(conn, long_sql)

    # The server still answers another user's login and query, on every front end.
    assert api_login(server, "ivan", password("ivan"))
    status, headers, _ = PortalClient(server).sign_in("ivan", password("ivan"))
    assert status == 303 and headers["Location"] == "/applications"
    with server.connect("ivan") as conn:
        assert query(conn, COUNT_SQL).num_rows > 0

    # The audit log holds those attempts, their long fields as a prefix and a hash.
    with server.connect("otto") as conn:
        logins = query(conn, "SELECT actor, detail FROM audit.events "
                             "WHERE action = 'login' AND outcome = 'refused'").to_pylist()
        statements = query(conn, "SELECT sql FROM audit.events "
                                 "WHERE action = 'query' AND actor = 'hana'").column("sql").to_pylist()
    bounded = [row for row in logins if HASHED.search(row["actor"])]
    assert {HASHED.search(row["actor"]).group(1) for row in bounded} == {"10000"}, logins
    assert all(row["actor"].startswith("n" * 64) and len(row["actor"]) < 400 for row in bounded)
    sql = [text for text in statements if HASHED.search(text or "")]
    assert sql and HASHED.search(sql[0]).group(1) == str(len(long_sql)) and sql[0].startswith("SELECT 'xxx")


def test_password_guessing_is_throttled_per_account_and_per_address(throttled: Server):
    answers = [handshake_error(throttled, b"vera", b"not-veras-password") for _ in range(20)]
    assert all("invalid user name or password" in answer for answer in answers[:6]), answers[:6]
    assert all(TOO_MANY.search(answer) for answer in answers[6:]), answers[6:]
    # Now even the right password is refused for the account, from anywhere…
    assert TOO_MANY.search(handshake_error(throttled, b"vera", password("vera").encode()))
    status, _, page = PortalClient(throttled, "127.0.0.2").sign_in("vera", password("vera"))
    assert status == 401 and PORTAL_TOO_MANY.search(page)
    # …and every account from the guessing address.
    assert TOO_MANY.search(handshake_error(throttled, b"walt", password("walt").encode()))
    # Another account from another address still signs in.
    status, headers, _ = PortalClient(throttled, "127.0.0.2").sign_in("xena", password("xena"))
    assert status == 303 and headers["Location"] == "/applications"

    # Guessing over many names through the portal locks the portal visitor's address.
    guesser = PortalClient(throttled, "127.0.0.3")
    pages = [guesser.sign_in(f"guess-{i}", "not-a-password")[2] for i in range(20)]
    assert not PORTAL_TOO_MANY.search(pages[0]) and all(PORTAL_TOO_MANY.search(page) for page in pages[11:])
    status, _, page = guesser.sign_in("yuri", password("yuri"))
    assert status == 401 and PORTAL_TOO_MANY.search(page)
    status, headers, _ = PortalClient(throttled, "127.0.0.4").sign_in("yuri", password("yuri"))
    assert status == 303 and headers["Location"] == "/applications"


def test_a_csrf_token_works_only_in_its_own_session(server: Server, browser):  # noqa: F811
    hana, ivan = signed_in(browser, server, "hana"), signed_in(browser, server, "ivan")
    token_of = lambda page: page.locator("input[name=csrf]").first.get_attribute("value")  # noqa: E731
    hana_token, ivan_token = token_of(hana), token_of(ivan)
    assert hana_token != ivan_token
    logout = f"{server.portal_url}/logout"
    assert ivan.context.request.post(logout, form={"csrf": hana_token}, max_redirects=0).status == 403
    ivan.goto("/applications")
    assert "ivan" in ivan.locator(".account .who").inner_text(), "the refused post changed nothing"
    assert ivan.context.request.post(logout, form={"csrf": ivan_token}, max_redirects=0).status == 303

    # Before sign-in: a pre-session's token does not sign in from another pre-session.
    first, second = visitor(browser, server).new_page(), visitor(browser, server).new_page()
    first.goto("/login")
    second.goto("/login")
    form = {"csrf": token_of(first), "next": "", "user": "hana", "password": password("hana")}
    assert second.context.request.post(f"{server.portal_url}/login", form=form, max_redirects=0).status == 403
    assert first.context.request.post(f"{server.portal_url}/login", form=form, max_redirects=0).status == 303

    # A cookie and field pair of the attacker's choosing (plain double submit) is refused.
    forged = visitor(browser, server)
    forged.add_cookies([{"name": name, "value": "attacker-chosen", "url": server.portal_url}
                        for name in ("enclave_presession", "enclave_csrf")])
    form = {**form, "csrf": "attacker-chosen"}
    assert forged.request.post(f"{server.portal_url}/login", form=form, max_redirects=0).status == 403


BAD_TARGETS = ["//evil.example/", "/\\evil.example/", "/\t/evil.example", "/\n/evil.example",
               "/%2F%2Fevil.example", "/%252F%252Fevil.example", "/%5Cevil.example", "/%09/evil.example",
               "https://evil.example/", "javascript:alert(1)", "evil.example", "/a//evil.example"]


def test_redirect_targets_are_kept_on_the_site(server: Server):
    portal = PortalClient(server)
    for target in BAD_TARGETS:
        status, headers, _ = portal.sign_in("hana", password("hana"), next=target)
        assert (status, headers["Location"]) == (303, "/applications"), target
        status, headers, _ = portal.request("GET", "/lang/en?back=" + urllib.parse.quote(target, safe=""))
        assert (status, headers["Location"]) == (303, "/"), target
    status, headers, _ = portal.sign_in("hana", password("hana"), next="/catalog?q=%E5%82%B7")
    assert (status, headers["Location"]) == (303, "/catalog?q=%E5%82%B7")
    status, headers, _ = portal.request("GET", "/lang/ja?back=" + urllib.parse.quote("/dashboard", safe=""))
    assert (status, headers["Location"]) == (303, "/dashboard")
