"""bench/hashonly.py, the password sign-in's reference in ``make bench``: it must do the
sign-in's hash (the right password passes, a wrong one does not) and answer bad input
plainly, or the reference would measure something other than the hash."""
import io
import json

import pytest

from bench.hashonly import make_app

APP = make_app((8, 1, 1), password="right password")  # Argon2id, cheap parameters


def call(method: str, path: str, body: bytes = b"") -> tuple[str, dict]:
    got = {}
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body)}
    out = b"".join(APP(environ, lambda status, headers: got.update(status=status, headers=dict(headers))))
    assert got["headers"]["Content-Length"] == str(len(out))
    return got["status"], json.loads(out)


def login(payload) -> tuple[str, dict]:
    return call("POST", "/login", json.dumps(payload).encode())


def test_the_right_password_signs_in_and_a_wrong_one_does_not():
    assert login({"username": "u0000001", "password": "right password"}) == ("200 OK", {"signedIn": "u0000001"})
    assert login({"username": "u0000001", "password": "wrong password"})[0] == "401 Unauthorized"


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"username": "u"}', b'{"username": "u", "password": 5}'])
def test_a_body_that_is_not_a_sign_in_is_a_400(body):
    assert call("POST", "/login", body) == ("400 Bad Request", {"error": "invalid_request"})


def test_readiness_and_unknown_paths():
    assert call("GET", "/")[0] == "200 OK"
    assert call("POST", "/elsewhere", b"{}")[0] == "404 Not Found"
