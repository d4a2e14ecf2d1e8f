"""After the whole suite: the servers' logs (gunicorn stdout/stderr with the access log) and a
dump of every database hold no password, code, TOTP secret, otpauth URI or JWT."""
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
