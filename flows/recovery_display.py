"""New recovery codes on their way to the person: kept in the (server-side) session from the
POST that made them until the person confirms they saved them (Post/Redirect/Get), so a
reload, Back, a download or a print never loses them; then gone for good. They wait at
most ``DISPLAY_SECONDS``; a sign-out flushes the session and them with it. In the session
table they are encrypted like TOTP secrets (``mfa.crypto``): a database dump alone does not
reveal them."""
import time

from django.utils.translation import gettext as _

from mfa import crypto

SESSION_KEY = "gatehouse_new_recovery_codes"
DISPLAY_SECONDS = 15 * 60


def codes_hold(request, *, codes: list[str], continue_url: str, regenerated: bool, passkey: bool = False) -> None:
    """Keep freshly made codes for the display page (call after any session-key change)."""
    request.session[SESSION_KEY] = {
        "codes": crypto.encrypt("\n".join(codes)), "continue_url": continue_url, "regenerated": regenerated, "passkey": passkey, "made_at": time.time(),
    }


def codes_held(request) -> dict | None:
    """The codes waiting to be saved, or None (none made, confirmed, or waited too long)."""
    held = request.session.get(SESSION_KEY)
    if not isinstance(held, dict) or time.time() - held.get("made_at", 0) > DISPLAY_SECONDS:
        request.session.pop(SESSION_KEY, None)
        return None
    try:
        codes = crypto.decrypt(held["codes"]).split("\n")
    except (crypto.InvalidToken, KeyError, TypeError):
        request.session.pop(SESSION_KEY, None)
        return None
    return {**held, "codes": codes}


def codes_saved(request) -> str | None:
    """The person saved them: drop them; the way on, if any were held."""
    held = codes_held(request)
    request.session.pop(SESSION_KEY, None)
    return held["continue_url"] if held else None


def codes_as_text(*, codes: list[str], tenant_name: str, username: str) -> str:
    heading = _("Recovery codes for %(username)s at %(tenant)s") % {"username": username, "tenant": tenant_name}
    note = _("Each code lets you sign in once, in place of your second factor. Keep them somewhere safe.")
    return "\n".join([heading, note, "", *codes, ""])
