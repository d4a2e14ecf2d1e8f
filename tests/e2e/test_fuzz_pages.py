"""Hostile input on every page form: random, odd and oversized values (hypothesis, bounded).
Never a 5xx, never a trace, never an off-site redirect, nothing written on refusal."""
import string
from http import HTTPStatus

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.conftest import PASSWORD, Browserless, no_trace

pytestmark = pytest.mark.e2e

EXAMPLES = 40
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

chars = st.characters(blacklist_categories=("Cs",))
values = st.one_of(
    st.text(chars, max_size=80),
    st.builds(lambda c, n: c * n, chars, st.integers(5_000, 300_000)),  # oversized
    st.sampled_from([
        "", " ", "\x00", "abc\x00def", "123456", " 1 2 3 4 5 6 ", "1234567", "١٢٣٤٥٦", "𝟙𝟚𝟛𝟜𝟝𝟞", "000000",
        "aaaa-bbbb-cccc", "' OR 1=1 --", "<script>alert(1)</script>", "{{ 7*7 }}", "%00", "../../etc/passwd",
        "//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)", "\r\nSet-Cookie: x=1",
        "resend", "regenerate-recovery-codes", "totp", "email", "none", "acme",
    ]),
)
extra_fields = st.dictionaries(st.text(chars, min_size=1, max_size=20), values, max_size=3)


class Written:
    """Rows a refused form must never create or change."""

    QUERIES = {
        "tenants": "SELECT count(*) FROM tenants_tenant",
        "users": "SELECT count(*) FROM accounts_user",
        "confirmed apps": "SELECT count(*) FROM mfa_totpdevice WHERE confirmed_at IS NOT NULL",
        "recovery codes": "SELECT count(*) FROM mfa_recoverycode",
        "mfa methods": "SELECT string_agg(username || '=' || mfa_method, ',' ORDER BY username) FROM accounts_user",
    }

    def __init__(self, db):
        self.db = db
        self.before = self.snapshot()

    def snapshot(self) -> dict:
        queries = dict(self.QUERIES)
        if not self.db.is_postgres:
            queries["mfa methods"] = "SELECT group_concat(username || '=' || mfa_method, ',') FROM (SELECT * FROM accounts_user ORDER BY username)"
        return {k: self.db.scalar(q) for k, q in queries.items()}

    def unchanged(self) -> None:
        assert self.snapshot() == self.before


def check(response, client: Browserless) -> None:
    assert response.status_code < 500, response.status_code
    no_trace(response.text)
    location = response.headers.get("location", "")
    assert not location or (location.startswith("/") and not location.startswith(("//", "/\\"))), location


def post(client: Browserless, path: str, token: str, data: dict):
    body = {**data, "csrfmiddlewaretoken": token}
    return client.http.post(path, data=body, headers={"Referer": str(client.http.base_url) + path})


@pytest.fixture(scope="module")
def written(main_stack):
    return Written(main_stack.db)


@given(username=values, password=values, next_=values, extra=extra_fields)
@FUZZ
def test_fuzz_login_form(main_stack, written, username, password, next_, extra):
    client = Browserless(main_stack.server.url)
    try:
        _, token = client.csrf("/tenant/acme/login/")
        response = post(client, "/tenant/acme/login/", token, {**extra, "username": username, "password": password, "next": next_})
        check(response, client)
        assert response.status_code in (HTTPStatus.OK, HTTPStatus.BAD_REQUEST, HTTPStatus.FORBIDDEN)
        assert client.http.get("/tenant/acme/account/").status_code == HTTPStatus.FOUND  # not signed in
    finally:
        client.close()
    written.unchanged()


@given(tenant=values, next_=values, extra=extra_fields)
@FUZZ
def test_fuzz_operator_login_form(main_stack, written, tenant, next_, extra):
    client = Browserless(main_stack.server.url)
    try:
        _, token = client.csrf("/login/")
        check(post(client, "/login/", token, {**extra, "tenant": tenant, "next": next_}), client)
    finally:
        client.close()
    written.unchanged()


@pytest.fixture(scope="module")
def pending_clients(main_stack):
    """Sign-ins waiting at each second-factor page: verify (email), set-up (app), choose."""
    clients = {}
    for name, username in (("verify", "vera"), ("setup", "sid"), ("choose", "cho")):
        client = Browserless(main_stack.server.url)
        assert client.login("pagefuzz", username).status_code == HTTPStatus.FOUND
        if name == "setup":
            client.submit("/tenant/pagefuzz/mfa/choose/", {"method": "totp"})
        path = f"/tenant/pagefuzz/mfa/{name}/"
        _, token = client.csrf(path)
        clients[name] = (client, path, token)
    signed_in = Browserless(main_stack.server.url)
    assert signed_in.login("acme", "nora").status_code == HTTPStatus.FOUND
    _, token = signed_in.csrf("/tenant/acme/account/")
    clients["account"] = (signed_in, "/tenant/acme/account/", token)
    yield clients
    for client, _, _ in clients.values():
        client.close()


@given(form=st.sampled_from(["verify", "setup", "choose", "account"]), field=st.sampled_from(["code", "action", "method"]),
       value=values, extra=extra_fields)
@FUZZ
def test_fuzz_second_factor_and_account_forms(main_stack, written, pending_clients, form, field, value, extra):
    client, path, token = pending_clients[form]
    response = post(client, path, token, {**extra, field: value})
    check(response, client)
    if form != "account":
        # Still only a pending sign-in: no page that needs a signed-in user answers.
        assert client.http.get("/tenant/pagefuzz/account/").status_code == HTTPStatus.FOUND
    written.unchanged()


@given(login=values, extra=extra_fields)
@FUZZ
def test_fuzz_forgot_password_form(main_stack, written, login, extra):
    client = Browserless(main_stack.server.url)
    try:
        _, token = client.csrf("/tenant/globex/password/forgot/")
        response = post(client, "/tenant/globex/password/forgot/", token, {**extra, "login": login})
        check(response, client)
        assert response.status_code in (HTTPStatus.OK, HTTPStatus.BAD_REQUEST)
    finally:
        client.close()
    written.unchanged()


@given(reset_token=st.text(string.ascii_letters + string.digits + "-_.", min_size=1, max_size=120),
       one=values, two=values, extra=extra_fields)
@FUZZ
def test_fuzz_reset_password_form(main_stack, written, reset_token, one, two, extra):
    client = Browserless(main_stack.server.url)
    path = f"/tenant/globex/password/reset/{reset_token}/"
    try:
        page = client.http.get(path)
        check(page, client)
        if page.status_code == HTTPStatus.NOT_FOUND or reset_token in (".", ".."):
            return  # not a path of this page
        assert "Ask for a new link" in page.text  # no fuzzed token is a live one
        _, token = client.csrf("/tenant/globex/password/forgot/")
        response = post(client, path, token, {**extra, "new_password1": one, "new_password2": two})
        check(response, client)
        assert response.status_code in (HTTPStatus.OK, HTTPStatus.BAD_REQUEST)
    finally:
        client.close()
    written.unchanged()


def test_oversized_bodies_are_refused_cleanly(main_stack, written):
    client = Browserless(main_stack.server.url)
    try:
        _, token = client.csrf("/tenant/acme/login/")
        response = post(client, "/tenant/acme/login/", token, {"username": "a" * (2 * 1024 * 1024), "password": PASSWORD})
        check(response, client)
        assert response.status_code in (HTTPStatus.BAD_REQUEST, HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        many = {f"f{i}": "x" for i in range(3000)}  # over Django's 1000-field limit
        response = post(client, "/tenant/acme/login/", token, {**many, "username": "nora", "password": PASSWORD})
        check(response, client)
        assert response.status_code == HTTPStatus.BAD_REQUEST
    finally:
        client.close()
    written.unchanged()
