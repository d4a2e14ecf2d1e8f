"""After the whole suite: the servers' logs (gunicorn stdout/stderr with the access log) and a
dump of every database hold no password, code, TOTP secret, otpauth URI, JWT or metrics token;
and a server logging JSON (``LOG_FORMAT=json``) wrote nothing but JSON objects, every line of
a request with its request id (tests/ops checks that access lines leave out the query string)."""
import json
import re

import pytest

pytestmark = pytest.mark.e2e

JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}")


def test_no_secret_in_logs_or_database_dump(main_stack, cluster_stack, registry, used_secrets):
    texts = {s.log.name: s.log_text() for s in registry.servers}
    texts.update({p.name: p.read_text(errors="replace") for p in registry.other_logs if p.exists()})
    texts.update({f"dump of {db.url.rsplit('/', 1)[-1]}": db.dump() for db in registry.databases})
    assert texts and all(texts.values())
    secrets = list(used_secrets)
    assert len(secrets) > 5  # the suite did hand out passwords, codes and tokens
    for name, text in texts.items():
        assert "otpauth://" not in text, name
        # A JWT is three base64url parts, the first two JSON objects ("eyJ" = '{"'); a bare
        # "eyJ" also turns up by chance inside random base64 (signed session data).
        assert not JWT.search(text), f"a JWT in {name}"
        assert "Traceback" not in text, f"a traceback in {name}"
        for secret in secrets:
            if secret.isdigit():  # a code: standing alone, not inside a number, a timestamp or a hex id
                found = re.search(rf"(?<![0-9A-Za-z.:]){secret}(?![0-9A-Za-z])", text)
            else:
                found = secret in text
            assert not found, f"a secret ({secret[:3]}…) in {name}"


REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def test_json_logs_are_json_lines_with_request_ids(main_stack, registry):
    json_servers = [s for s in registry.servers if s.env.get("LOG_FORMAT") == "json"]
    assert json_servers, "no server logged JSON"
    for server in json_servers:
        lines = server.log_text().splitlines()
        access = 0
        for line in lines:
            data = json.loads(line)  # every line, gunicorn's own included
            assert isinstance(data, dict) and {"time", "level", "logger", "message", "request_id"} <= set(data), line
            if data["logger"].startswith("gunicorn."):
                continue
            # Gatehouse writes only while serving a request: every one of its lines has the id.
            assert REQUEST_ID.fullmatch(data["request_id"]) and data["request_id"] != "-", line
            if data["logger"] == "gatehouse.access":
                access += 1
                # A "?" may be part of a path (a fuzzed %3F, decoded); query strings are kept out by
                # writing request.path, and the secrets they could carry are searched for above.
                assert {"method", "path", "status", "duration_ms"} <= set(data), line
        assert access, f"{server.name}: no access line"
