"""What each scenario sends, per system (Gatehouse, the hash-only server, the two peers).

Most scenarios are plans for ``wrk`` (bench/loadwrk.py): the same requests round and round
(sign-ins, reads, the empty view), single-use lists (pending sign-ins with the TOTP code of a
step each user may still use) or refresh-token chains. A few stay with the bench's own client
(bench/httpload.py), because an operation there is a conversation wrk's script cannot hold:
the emailed code (the code arrives by SMTP, in this process), password + TOTP (the second
request carries the first answer's token and a code scheduled for that user), and the storm
(every answer tallied per account, to be checked against the database's counters).
"""
from __future__ import annotations

import asyncio
import http.client
import json
from collections import deque
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlencode, urlsplit

from bench.httpload import Exhausted, Op
from bench.loadwrk import Plan, WrkResult, raw
from bench.totp import Totp, TotpPool

TENANT = "bench"
JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
TOTP_PER_LEG = 150  # a TOTP leg's list: at most this many pending sign-ins (it ends at its last answer)


@dataclass
class WrkOp:
    """A scenario run by wrk: ``plan(leg, legs_left)`` gives the leg's requests (``leg``: its
    ``seconds`` and ``ops``, the least a cycle or chain leg runs);
    ``done(result)`` takes back what the leg leaves (a chain's tokens)."""

    plan: Callable[[float, int], Plan]
    done: Callable[[WrkResult], None] | None = None


@dataclass
class PyOp:
    """A scenario run by the bench's own client: ``op(conn, Op)`` is one operation."""

    op: Callable
    cap: Callable[[float, int], int | None] | None = None  # the leg's most operations (TOTP codes open)


def cycle(expect: int, reqs: list[bytes]) -> WrkOp:
    return WrkOp(lambda leg, legs_left: Plan(expect=expect, mode="cycle", reqs=reqs, limit=leg.ops, min_s=leg.seconds))


def once_totp(pool: TotpPool, expect: int, build: Callable[[str, int], bytes | None]) -> WrkOp:
    """Single-use requests, each a user's pending sign-in with the code of a step that user may
    still pass (``TotpPool``); a leg takes an equal share of the codes open for the rest of the
    scenario's legs, at most ``TOTP_PER_LEG``."""

    def plan(leg, legs_left: int) -> Plan:
        within = 20  # s: a code must still pass when its request goes out
        n = min(pool.open_codes(within * legs_left) // max(legs_left, 1), TOTP_PER_LEG)
        reqs = [r for r in (build(user, step) for user, step in pool.take_many(n, within)) if r is not None]
        return Plan(expect=expect, mode="once", reqs=reqs)

    return WrkOp(plan)


def chain(path: str, field: str, tokens: list[str], host: str, headers: dict | None = None) -> WrkOp:
    """Refresh with rotation: each answer's new refresh token (JSON ``field``) is the next request's."""
    left = deque(tokens)

    def plan(leg, legs_left: int) -> Plan:
        return Plan(expect=200, mode="chain", limit=leg.ops, min_s=leg.seconds, path=path, headers={**JSON, **(headers or {}), "Host": host},
                    prefix=f'{{"{field}": "', suffix='"}', pattern=f'"{field}"%s*:%s*"([^"]+)"', tokens=list(left))

    def done(result: WrkResult) -> None:
        left.clear()
        left.extend(result.tokens)

    return WrkOp(plan, done)


def gatehouse(host: str, seed: dict, fx: dict, totp: Totp, sink, *, refresh_tokens: list[str] | None = None) -> dict:
    """Gatehouse's scenarios on one server (one dataset; every TOTP pool of the dataset shares
    ``last``, the steps its users have spent, as the server's replay state does)."""
    base = f"/tenant/{TENANT}"
    api = f"{base}/v2"
    password, csrf = seed["password"], fx["csrf"]
    pwd_users = [f"u{i:07d}" for i in range(*seed["layout"]["pwd"])]
    auth = {"Authorization": f"Bearer {fx['adminAccess']}"}
    last: dict[str, int] = {}

    def post(path: str, body: bytes, headers: dict) -> bytes:
        return raw("POST", path, host=host, body=body, headers=headers)

    api_tokens = dict(fx["totpApi"])
    api_pool = TotpPool(list(api_tokens), last, left=lambda u: int(u in api_tokens))

    def totp_api(user: str, step: int) -> bytes:
        body = json.dumps({"mfaToken": api_tokens.pop(user), "code": totp.code(step)}).encode()
        return post(f"{api}/auth/mfa/verify", body, JSON)

    sessions = {u: list(keys) for u, keys in fx["totpPage"].items()}
    page_pool = TotpPool(list(sessions), last, left=lambda u: len(sessions[u]))

    def totp_page(user: str, step: int) -> bytes:
        body = urlencode({"csrfmiddlewaretoken": csrf, "code": totp.code(step)}).encode()
        return post(f"{base}/mfa/verify/", body, {**FORM, "Cookie": f"csrftoken={csrf}; sessionid={sessions[user].pop()}"})

    pwd_totp_pool = TotpPool(fx["pwdTotp"], last)

    async def password_totp_api(conn, o: Op):
        user, step = pwd_totp_pool.take()
        r = o.expect(await conn.post_json(f"{api}/auth/login", {"username": user, "password": password}), 200, "login")
        token = r.json().get("mfaToken")
        if not token:
            o.fail("login: no mfaToken")
        o.expect(await conn.post_json(f"{api}/auth/mfa/verify", {"mfaToken": token, "code": totp.code(step)}), 200, "verify")

    email_users = deque(fx["email"].items())

    async def email_api(conn, o: Op):
        if not email_users:
            raise Exhausted()
        user, token = email_users.popleft()
        waiter = sink.expect(f"{user}@bench.example")
        o.expect(await conn.post_json(f"{api}/auth/mfa/email/send", {"mfaToken": token}), 202, "email send")
        code = await asyncio.wait_for(waiter, 10)
        o.expect(await conn.post_json(f"{api}/auth/mfa/verify", {"mfaToken": token, "code": code}), 200, "email verify")

    ids = fx["apiUserIds"]
    list_pages: list[str] = []

    def users_list(leg, legs_left: int) -> Plan:
        if not list_pages:  # the first time: follow the pages' "next" links once (50 pages at most)
            path = f"{api}/Users"
            hostname, port = host.split(":")
            while path and len(list_pages) < 50:
                list_pages.append(path)
                c = http.client.HTTPConnection(hostname, int(port), timeout=30)
                c.request("GET", path, headers=auth)
                nxt = json.loads(c.getresponse().read()).get("next")
                c.close()
                path = (urlsplit(nxt).path + ("?" + urlsplit(nxt).query if urlsplit(nxt).query else "")) if nxt else None
        return Plan(expect=200, reqs=[raw("GET", p, host=host, headers=auth) for p in list_pages], limit=leg.ops, min_s=leg.seconds)

    return {
        "empty": cycle(200, [raw("GET", "/bench/empty/", host=host)]),
        "password_api": cycle(200, [post(f"{api}/auth/login", json.dumps({"username": u, "password": password}).encode(), JSON)
                                    for u in pwd_users]),
        "password_page": cycle(302, [post(f"{base}/login/", urlencode({"csrfmiddlewaretoken": csrf, "username": u,
                                                                        "password": password}).encode(),
                                          {**FORM, "Cookie": f"csrftoken={csrf}"}) for u in pwd_users]),
        "totp_api": once_totp(api_pool, 200, totp_api),
        "totp_page": once_totp(page_pool, 302, totp_page),
        "refresh": chain(f"{api}/auth/token/refresh", "refreshToken", refresh_tokens or fx["refresh"], host),
        "users_list": WrkOp(users_list),
        "users_detail": cycle(200, [raw("GET", f"{api}/Users/{i}", host=host, headers=auth) for i in ids]),
        "users_put": cycle(200, [raw("PUT", f"{api}/Users/{uid}", host=host, headers={**auth, **JSON},
                                     body=json.dumps({"email": f"api{n}@bench.example"}).encode()) for n, uid in enumerate(ids)]),
        "password_totp_api": PyOp(password_totp_api, cap=lambda within, legs: pwd_totp_pool.open_codes(within) // legs),
        "email_api": PyOp(email_api),
    }


def hash_only(host: str, password: str) -> dict:
    body = json.dumps({"username": "u0000001", "password": password}).encode()
    login = cycle(200, [raw("POST", "/login", host=host, body=body, headers=JSON)])
    return {"password_api": login, "password_page": login}  # the same hash, whichever front door


def two_factor(host: str, seed: dict, fx: dict, totp: Totp) -> dict:
    """django-two-factor-auth's pages (its login wizard: the auth step, then the token step)."""
    login, csrf, password = "/account/login/", fx["csrf"], seed["password"]
    last: dict[str, int] = {}
    cookie = {"Cookie": f"csrftoken={csrf}"}

    def auth_step(user: str) -> dict:
        return {"csrfmiddlewaretoken": csrf, "login_view-current_step": "auth", "auth-username": user, "auth-password": password}

    sessions = {u: list(keys) for u, keys in fx["totpPage"].items()}
    page_pool = TotpPool(list(sessions), last, left=lambda u: len(sessions[u]))

    def totp_page(user: str, step: int) -> bytes:
        body = urlencode({"csrfmiddlewaretoken": csrf, "login_view-current_step": "token", "token-otp_token": totp.code(step)}).encode()
        return raw("POST", login, host=host, body=body, headers={**FORM, "Cookie": f"csrftoken={csrf}; sessionid={sessions[user].pop()}"})

    both_pool = TotpPool(fx["pwdTotp"], last)

    async def password_totp_page(conn, o: Op):
        user, step = both_pool.take()
        r = o.expect(await conn.post_form(login, auth_step(user), cookies={"csrftoken": csrf}), 200, "auth step")
        sid = r.cookies.get("sessionid")
        if not sid or b"token-otp_token" not in r.body:
            o.fail("auth step: no token step")
        o.expect(await conn.post_form(login, {"csrfmiddlewaretoken": csrf, "login_view-current_step": "token",
                                              "token-otp_token": totp.code(step)}, cookies={"csrftoken": csrf, "sessionid": sid}),
                 302, "token step")

    return {
        "empty": cycle(200, [raw("GET", "/done/", host=host)]),
        "password_page": cycle(302, [raw("POST", login, host=host, body=urlencode(auth_step(u)).encode(), headers={**FORM, **cookie})
                                     for u in fx["pwd"]]),
        "totp_page": once_totp(page_pool, 302, totp_page),
        "password_totp_page": PyOp(password_totp_page, cap=lambda within, legs: both_pool.open_codes(within) // legs),
    }


def allauth(host: str, seed: dict, fx: dict, totp: Totp) -> dict:
    """django-allauth's pages (account, mfa) and its headless API (the "app" client, JWT tokens)."""
    app, csrf, password = "/_allauth/app/v1", fx["csrf"], seed["password"]
    last: dict[str, int] = {}
    page_sessions = {u: list(keys) for u, keys in fx["totpPage"].items()}
    page_pool = TotpPool(list(page_sessions), last, left=lambda u: len(page_sessions[u]))
    api_sessions = {u: list(keys) for u, keys in fx["totpApi"].items()}
    api_pool = TotpPool(list(api_sessions), last, left=lambda u: len(api_sessions[u]))

    def totp_page(user: str, step: int) -> bytes:
        body = urlencode({"csrfmiddlewaretoken": csrf, "code": totp.code(step)}).encode()
        return raw("POST", "/accounts/2fa/authenticate/", host=host, body=body,
                   headers={**FORM, "Cookie": f"csrftoken={csrf}; sessionid={page_sessions[user].pop()}"})

    def totp_api(user: str, step: int) -> bytes:
        return raw("POST", f"{app}/auth/2fa/authenticate", host=host, body=json.dumps({"code": totp.code(step)}).encode(),
                   headers={**JSON, "X-Session-Token": api_sessions[user].pop()})

    return {
        "empty": cycle(200, [raw("GET", "/done/", host=host)]),
        "password_page": cycle(302, [raw("POST", "/accounts/login/", host=host, headers={**FORM, "Cookie": f"csrftoken={csrf}"},
                                         body=urlencode({"csrfmiddlewaretoken": csrf, "login": u, "password": password}).encode())
                                     for u in fx["pwd"]]),
        "password_api": cycle(200, [raw("POST", f"{app}/auth/login", host=host, headers=JSON,
                                        body=json.dumps({"username": u, "password": password}).encode()) for u in fx["pwd"]]),
        "totp_page": once_totp(page_pool, 302, totp_page),
        "totp_api": once_totp(api_pool, 200, totp_api),
        "refresh": chain(f"{app}/tokens/refresh", "refresh_token", fx["refresh"], host),
    }
