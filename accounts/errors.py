"""Failures of the sign-in flow, shared by the pages and the API.

Each carries a stable ``code`` (what tests and API clients look at), the HTTP status the
API answers with, a sentence for people, and any extra fields (``retryAfter`` …).
"""
from typing import Any


class AuthFailure(Exception):
    code = "auth_failure"
    status = 400
    message = "The request could not be completed."

    def __init__(self, message: str | None = None, **extra: Any) -> None:
        self.message = message or self.message
        self.extra = extra
        super().__init__(self.message)


class InvalidCredentials(AuthFailure):
    code = "invalid_credentials"
    status = 401
    message = "The username or password is incorrect."


class LockedOut(AuthFailure):
    code = "locked_out"
    status = 429

    def __init__(self, retry_after: int) -> None:
        minutes, seconds = divmod(max(retry_after, 1), 60)
        wait = f"{minutes} min {seconds} s" if minutes else f"{seconds} s"
        super().__init__(
            f"Too many failed attempts. This account is locked; try again in {wait}.",
            retry_after=max(retry_after, 1),
        )


class InvalidCode(AuthFailure):
    code = "invalid_code"
    status = 401
    message = "That code is not valid."

    def __init__(self, attempts_remaining: int) -> None:
        left = f"{attempts_remaining} attempt{'s' if attempts_remaining != 1 else ''}"
        super().__init__(
            f"That code is not valid. {left} left before the account is locked.",
            attempts_remaining=attempts_remaining,
        )


class CodeAlreadyUsed(AuthFailure):
    """The code last accepted for this user, sent again (a double submit, a second tab): not
    counted as a failure, so it can lock no one out."""

    code = "code_already_used"
    status = 401
    message = "That code has just been used. Wait for a new code and enter that one."


class ResendTooSoon(AuthFailure):
    code = "resend_too_soon"
    status = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"A code was sent moments ago. You can ask for another in {max(retry_after, 1)} s.",
            retry_after=max(retry_after, 1),
        )


class EmailUnavailable(AuthFailure):
    code = "email_unavailable"
    status = 503
    message = "The code could not be emailed just now. Please try again in a moment."


class InvalidMfaToken(AuthFailure):
    code = "invalid_mfa_token"
    status = 401
    message = "This sign-in has expired or is not valid. Please sign in again."


class EnrollmentNotAllowed(AuthFailure):
    code = "enrollment_not_allowed"
    status = 409
    message = "This account has no authenticator app set-up to do."


class InvalidRefreshToken(AuthFailure):
    code = "invalid_token"
    status = 401
    message = "The refresh token is invalid, expired or already used. Please sign in again."


class InvalidResetToken(AuthFailure):
    """A password reset link that is forged, expired, already used, of another tenant, or
    made before the password last changed: all alike."""

    code = "invalid_token"
    status = 400
    message = "This password reset link is not valid: it may have expired or been used already. Ask for a new one."
