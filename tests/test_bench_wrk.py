"""bench/loadwrk.py with the real wrk (bench/wrk/requests.lua) against a small server in this
process: every single-use request is sent exactly once (wrk 4.1 calls the script's request()
once more than it sends, at start), statuses other than the expected one are errors, and a
chain hands back the tokens it did not spend."""
import asyncio
import json
import shutil
import threading
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from bench.loadwrk import Plan, raw, run_wrk

pytestmark = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk (Debian package) is not installed")


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    seen = []

    def app(environ, start_response):
        path = environ["PATH_INFO"]
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        seen.append((path, body))
        if path == "/refresh":
            n = int(json.loads(body)["t"]) + 1000
            out = json.dumps({"t": str(n)}).encode()
        else:
            out = b"{}"
        status = "404 Not Found" if path == "/missing" else "200 OK"
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(out)))])
        return [out]

    httpd = make_server("127.0.0.1", 0, app, handler_class=Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_port, seen
    httpd.shutdown()


def run(plan, port, tmp_path, conc=3):
    return asyncio.run(run_wrk(plan, host="127.0.0.1", port=port, concurrency=conc, spec_file=tmp_path / "spec.lua"))


def test_a_once_list_is_sent_exactly_once_and_ends_at_its_last_answer(server, tmp_path):
    port, seen = server
    paths = ["/a", "/b", "/missing", "/c", "/d"]
    got = run(Plan(expect=200, mode="once", reqs=[raw("GET", p, host="x") for p in paths]), port, tmp_path)
    assert sorted(p for p, _ in seen) == sorted(paths)
    assert (got.ops, got.errors) == (4, 1) and got.sample.startswith("404")
    assert got.elapsed < 10  # ended by its last answer, not by wrk's 60 s ceiling


def test_a_cycle_runs_until_its_least_answers_and_seconds(server, tmp_path):
    port, seen = server
    got = run(Plan(expect=200, reqs=[raw("GET", "/a", host="x")], limit=50, min_s=1), port, tmp_path)
    assert got.ops >= 50 and got.errors == 0 and 1 <= got.elapsed < 10


def test_a_chain_hands_back_hundreds_of_long_tokens(server, tmp_path):
    port, seen = server
    tokens = [str(10**300 + i) for i in range(300)]  # ~90 KB on wrk's last line
    plan = Plan(expect=200, mode="chain", path="/refresh", headers={"Content-Type": "application/json"},
                prefix='{"t": "', suffix='"}', pattern='"t"%s*:%s*"([^"]+)"', tokens=tokens, limit=5, min_s=1)
    got = run(plan, port, tmp_path, conc=2)
    assert len(got.tokens) >= 290


def test_a_chain_sends_each_answers_token_next_and_hands_back_the_rest(server, tmp_path):
    port, seen = server
    plan = Plan(expect=200, mode="chain", path="/refresh", headers={"Content-Type": "application/json"},
                prefix='{"t": "', suffix='"}', pattern='"t"%s*:%s*"([^"]+)"', tokens=["1", "2"], limit=20, min_s=1)
    got = run(plan, port, tmp_path, conc=2)
    sent = [json.loads(b)["t"] for p, b in seen if p == "/refresh"]
    assert sent[:2] == ["1", "2"] or sorted(sent[:2]) == ["1", "2"]
    assert len(sent) == len(set(sent))  # no token twice: each came from the answer before
    assert got.ops >= 20 and got.errors == 0
    assert set(got.tokens) <= {str(int(t) + 1000) for t in sent} and len(got.tokens) <= 2
