"""The password sign-in's ceiling on this machine: the Argon2 verify alone behind the same HTTP server.

A WSGI application with no framework, no database and no cache: ``POST /login`` with the
sign-in's JSON body (``username``, ``password``) verifies the password against one Argon2id
hash made with the bench's parameters (``ARGON2_*``) and answers 200 (401 for a wrong
password, 400 for a body that is not such JSON); ``GET /`` answers 200 (readiness). The
bench serves it with the same gunicorn, workers and client as Gatehouse and runs its legs in
the password sign-in's group, so ``latest.md`` shows how much of the Argon2 bound ANY
application reaches here once requests arrive over HTTP from a client on the same cores,
next to how much Gatehouse reaches. A reference, not a bound: nothing is judged against it.
"""
from __future__ import annotations

import json
import os

from argon2 import PasswordHasher, Type
from argon2.exceptions import VerificationError

PASSWORD = os.environ.get("BENCH_PASSWORD", "correct horse battery staple 42")


def params_from_env() -> tuple[int, int, int]:
    return (int(os.environ.get("ARGON2_MEMORY_KIB", 19456)), int(os.environ.get("ARGON2_TIME_COST", 2)),
            int(os.environ.get("ARGON2_PARALLELISM", 1)))


def make_app(params: tuple[int, int, int], password: str = PASSWORD):
    m, t, p = params
    hasher = PasswordHasher(time_cost=t, memory_cost=m, parallelism=p, type=Type.ID)
    encoded = hasher.hash(password)

    def application(environ, start_response):
        def answer(status: str, body: dict):
            out = json.dumps(body).encode()
            start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(out)))])
            return [out]

        if environ["REQUEST_METHOD"] == "GET":
            return answer("200 OK", {"ready": True})
        if environ["REQUEST_METHOD"] != "POST" or environ.get("PATH_INFO") != "/login":
            return answer("404 Not Found", {"error": "not_found"})
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            data = json.loads(environ["wsgi.input"].read(length))
            username, given = data["username"], data["password"]
            if not isinstance(username, str) or not isinstance(given, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return answer("400 Bad Request", {"error": "invalid_request"})
        try:
            hasher.verify(encoded, given)
        except VerificationError:
            return answer("401 Unauthorized", {"error": "invalid_credentials"})
        return answer("200 OK", {"signedIn": username})

    return application


def serve():
    """gunicorn's application factory: ``gunicorn 'bench.hashonly:serve()'``."""
    return make_app(params_from_env())
