"""Every user-facing string in German and Spanish (issue 21): the catalogues the code would
produce today (``makemessages``, the committed files put back afterwards) have no empty or fuzzy entry, and each
translation keeps its msgid's placeholders; the language follows Accept-Language, else the
tenant's default, on pages, API ``detail`` sentences and mails."""
import re
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail
from django.core.management import call_command

from accounts.models import MfaMethod
from tenants.models import Tenant
from tests.accounts.flows import code_from_mail, login_url, verify_url
from tests.conftest import PASSWORD, require_tool, run_notices

LANGUAGES = ("de", "es")
PLACEHOLDER = re.compile(r"%\([a-z_]+\)[-.\d]*[sdf]|\{[a-z_]+\}")


def compiled(language: str) -> Path:
    return Path(settings.BASE_DIR) / "locale" / language / "LC_MESSAGES" / "django.mo"


@pytest.fixture(scope="module")
def fresh_catalogues():
    """The committed .po files merged with what makemessages finds in the code now. Django's
    makemessages writes the project's strings into the project's own locale/ (whatever
    LOCALE_PATHS says), so the committed files are kept aside and put back afterwards."""
    polib = pytest.importorskip("polib")
    require_tool("xgettext")
    require_tool("msgmerge")
    paths = {language: Path(settings.BASE_DIR) / "locale" / language / "LC_MESSAGES" / "django.po" for language in LANGUAGES}
    kept = {language: path.read_bytes() for language, path in paths.items()}
    try:
        call_command("makemessages", locale=list(LANGUAGES), no_obsolete=True, verbosity=0,
                     ignore_patterns=[".venv/*", "bench/*", "tests/*", "staticfiles/*", "docs/*"])
        return {language: polib.pofile(str(path)) for language, path in paths.items()}
    finally:
        for language, path in paths.items():
            path.write_bytes(kept[language])


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_user_facing_string_is_translated(fresh_catalogues, language):
    catalogue = fresh_catalogues[language]
    assert len(catalogue) > 250
    untranslated = [e.msgid for e in catalogue if not e.translated() or "fuzzy" in e.flags]
    assert untranslated == [], f"{len(untranslated)} strings without a {language} translation: {untranslated[:20]}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_translations_keep_their_placeholders(fresh_catalogues, language):
    wrong = []
    for entry in fresh_catalogues[language]:
        pairs = [(entry.msgid, entry.msgstr)] if not entry.msgid_plural else [
            (entry.msgid_plural, text) for text in entry.msgstr_plural.values()
        ]
        for source, text in pairs:
            expected = sorted(set(PLACEHOLDER.findall(source)) - {"%(count)d"} if entry.msgid_plural else PLACEHOLDER.findall(source))
            got = sorted(set(PLACEHOLDER.findall(text)) - {"%(count)d"} if entry.msgid_plural else PLACEHOLDER.findall(text))
            if expected != got:
                wrong.append((source, text))
    assert wrong == []


def test_the_committed_catalogues_compile_with_msgfmt(tmp_path):
    msgfmt = require_tool("msgfmt")
    for language in LANGUAGES:
        po = Path(settings.BASE_DIR) / "locale" / language / "LC_MESSAGES" / "django.po"
        result = subprocess.run([msgfmt, "--check", "-o", str(tmp_path / f"{language}.mo"), str(po)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr


@pytest.fixture
def translations_compiled():
    for language in LANGUAGES:
        if not compiled(language).is_file():
            require_tool("msgfmt")
            pytest.fail(f"{compiled(language)} is missing: run `make compilemessages` (make test does)")


# --- the language of a request ----------------------------------------------------------------

@pytest.mark.parametrize(("header", "expected", "word"), [
    ("de-DE,de;q=0.9,en;q=0.5", "de", "Anmelden"),
    ("es-ES", "es", "Iniciar sesión"),
    ("fr-FR,es;q=0.8,de;q=0.5", "es", "Iniciar sesión"),
    ("en-GB,de;q=0.9", "en", "Sign in"),
])
def test_the_page_follows_accept_language(client, tenant, translations_compiled, header, expected, word):
    response = client.get(login_url(tenant.id), HTTP_ACCEPT_LANGUAGE=header)
    assert response["Content-Language"] == expected and "Accept-Language" in response["Vary"]
    html = response.content.decode()
    assert f'<html lang="{expected}">' in html and word in html


def test_without_a_language_the_tenant_default_applies(client, tenant, translations_compiled):
    Tenant.objects.filter(pk=tenant.id).update(default_language="es")
    for header in ({}, {"HTTP_ACCEPT_LANGUAGE": "fr-FR, ja;q=0.5"}):
        response = client.get(login_url(tenant.id), **header)
        assert response["Content-Language"] == "es" and "Iniciar sesión" in response.content.decode()
    # The browser's own wish still wins.
    assert client.get(login_url(tenant.id), HTTP_ACCEPT_LANGUAGE="de")["Content-Language"] == "de"


def test_api_detail_sentences_are_translated(client, user, translations_compiled):
    url = f"/tenant/{user.tenant_id}/v2/auth/login"
    body = {"username": user.username, "password": "wrong-password-1"}
    answer = client.post(url, body, content_type="application/json", HTTP_ACCEPT_LANGUAGE="de").json()
    assert answer == {"error": "invalid_credentials", "detail": "Benutzername oder Passwort ist falsch."}
    answer = client.post(url, {"username": "x"}, content_type="application/json", HTTP_ACCEPT_LANGUAGE="es").json()
    assert answer["error"] == "invalid_request" and answer["fields"]["password"] == ["Este campo es requerido."]  # DRF's own Spanish


def test_form_errors_and_the_emailed_code_are_in_the_language(client, user_factory, settings, translations_compiled):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    emma = user_factory("emma", mfa_method=MfaMethod.EMAIL)
    response = client.post(login_url(emma.tenant_id), {"username": "", "password": ""}, HTTP_ACCEPT_LANGUAGE="de")
    assert "Geben Sie Ihren Benutzernamen ein." in response.content.decode()
    client.post(login_url(emma.tenant_id), {"username": "emma", "password": PASSWORD}, HTTP_ACCEPT_LANGUAGE="de")
    page = client.get(verify_url(emma.tenant_id), HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "Code eingeben" in page and "Neuen Code senden" in page
    message = mail.outbox[-1]
    assert "ist Ihr Anmeldecode für" in message.subject and "Er gilt 10 Minuten" in message.body
    response = client.post(verify_url(emma.tenant_id), {"code": code_from_mail(message)}, HTTP_ACCEPT_LANGUAGE="de", follow=True)
    assert "Ihr Konto" in response.content.decode()


def test_notices_are_in_the_tenant_default_language(user_factory, tenant, settings, translations_compiled):
    from accounts.notifications import notify_user

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    Tenant.objects.filter(pk=tenant.id).update(default_language="es")
    tina = user_factory("tina", mfa_method=MfaMethod.TOTP)
    tina.tenant.refresh_from_db()
    notify_user(user=tina, kind="factor_setup", method=MfaMethod.TOTP.label)
    run_notices()
    assert mail.outbox[-1].subject.endswith("se configuró un segundo factor en su cuenta")
    assert "App de autenticación" in mail.outbox[-1].body and "Hola, tina:" in mail.outbox[-1].body


@pytest.mark.parametrize(("header", "expected"), [
    ("", None),
    ("de", "de"),
    ("de-AT", "de"),
    ("fr, es;q=0.2, de;q=0.5", "de"),
    ("es;q=0, de;q=0.1", "de"),
    ("*", None),
    ("en;q=abc, es", "es"),
    ("x" * 500, None),
    ("ja, zh-Hant", None),
])
def test_accept_language_is_read_by_quality(header, expected):
    from config.middleware import accepted_language

    assert accepted_language(header) == expected
