"""mfa.totp: pure RFC 6238 functions, tested without the database."""
import hashlib
import subprocess
from base64 import b32decode, b32encode
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from mfa import totp
from tests.conftest import FIXED_SECRET, require_tool

SEEDS = {
    # RFC 6238 Appendix B: the seed for each mode, as ASCII.
    "sha1": (hashlib.sha1, b"12345678901234567890"),
    "sha256": (hashlib.sha256, b"12345678901234567890123456789012"),
    "sha512": (hashlib.sha512, b"1234567890123456789012345678901234567890123456789012345678901234"),
}

# (Unix time, T as the RFC prints it, mode, TOTP) — the whole table of RFC 6238 Appendix B.
RFC6238_VECTORS = [
    (59, "0000000000000001", "sha1", "94287082"),
    (59, "0000000000000001", "sha256", "46119246"),
    (59, "0000000000000001", "sha512", "90693936"),
    (1111111109, "00000000023523EC", "sha1", "07081804"),
    (1111111109, "00000000023523EC", "sha256", "68084774"),
    (1111111109, "00000000023523EC", "sha512", "25091201"),
    (1111111111, "00000000023523ED", "sha1", "14050471"),
    (1111111111, "00000000023523ED", "sha256", "67062674"),
    (1111111111, "00000000023523ED", "sha512", "99943326"),
    (1234567890, "000000000273EF07", "sha1", "89005924"),
    (1234567890, "000000000273EF07", "sha256", "91819424"),
    (1234567890, "000000000273EF07", "sha512", "93441116"),
    (2000000000, "0000000003F940AA", "sha1", "69279037"),
    (2000000000, "0000000003F940AA", "sha256", "90698825"),
    (2000000000, "0000000003F940AA", "sha512", "38618901"),
    (20000000000, "0000000027BC86AA", "sha1", "65353130"),
    (20000000000, "0000000027BC86AA", "sha256", "77737706"),
    (20000000000, "0000000027BC86AA", "sha512", "47863826"),
]


def b32(seed: bytes) -> str:
    return b32encode(seed).decode().rstrip("=")


@pytest.mark.parametrize(("unix_time", "t_hex", "mode", "expected"), RFC6238_VECTORS)
def test_rfc6238_appendix_b_vector(unix_time, t_hex, mode, expected):
    digest, seed = SEEDS[mode]
    step = int(t_hex, 16)
    assert totp.step_at(unix_time) == step
    assert totp.code_at_step(b32(seed), step, digits=8, digest=digest) == expected


@pytest.mark.parametrize(("unix_time", "t_hex", "mode", "expected"), [v for v in RFC6238_VECTORS if v[2] == "sha1"])
def test_six_digit_code_is_the_last_six_of_the_rfc_value(unix_time, t_hex, mode, expected):
    # Gatehouse's codes (SHA-1, 6 digits) are the RFC's 8-digit values modulo 10^6.
    assert totp.code_at_step(FIXED_SECRET, totp.step_at(unix_time)) == expected[-6:]


def test_fixed_secret_is_the_rfc_sha1_seed():
    assert b32decode(FIXED_SECRET) == SEEDS["sha1"][1]


def test_codes_agree_with_oathtool():
    oathtool = require_tool("oathtool")
    for unix_time in (59, 1111111109, 1234567890, 2000000000):
        out = subprocess.run(
            [oathtool, "--totp", "-b", "-d", "6", f"--now=@{unix_time}", FIXED_SECRET],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()
        assert totp.code_at_step(FIXED_SECRET, totp.step_at(unix_time)) == out


# --- normalize_code --------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("123456", "123456"),
        ("123 456", "123456"),
        (" 1 2 3 4 5 6 ", "123456"),
        ("000000", "000000"),
    ],
)
def test_normalize_code_accepts_six_ascii_digits_and_ignores_spaces(raw, expected):
    assert totp.normalize_code(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "١٢٣٤٥٦",  # Arabic-Indic digits: str.isdigit() says yes, the contract says no
        "１２３４５６",  # full-width digits
        "12345",  # five digits
        "1234567",  # seven digits
        "",
        "      ",
        "12345a",
        "12-3456",
        "+12345",
        "1234.5",
        "12345\n6",
    ],
)
def test_normalize_code_refuses_anything_but_six_ascii_digits(raw):
    assert totp.normalize_code(raw) is None


@pytest.mark.parametrize("raw", [None, 123456, b"123456"])
def test_normalize_code_refuses_non_strings(raw):
    assert totp.normalize_code(raw) is None


# --- otpauth URI -----------------------------------------------------------------------------

def test_otpauth_uri_has_the_contract_format_exactly():
    uri = totp.otpauth_uri(secret="JBSWY3DPEHPK3PXP", issuer="Acme", username="alice")
    assert uri == "otpauth://totp/Acme:alice?secret=JBSWY3DPEHPK3PXP&issuer=Acme&algorithm=SHA1&digits=6&period=30"


def test_otpauth_uri_url_encodes_issuer_and_username():
    uri = totp.otpauth_uri(secret="JBSWY3DPEHPK3PXP", issuer="Acme & Co/EU", username="jo+test@x.org")
    assert uri == (
        "otpauth://totp/Acme%20%26%20Co%2FEU:jo%2Btest%40x.org"
        "?secret=JBSWY3DPEHPK3PXP&issuer=Acme%20%26%20Co%2FEU&algorithm=SHA1&digits=6&period=30"
    )


def test_otpauth_uri_round_trips_through_a_parser():
    uri = totp.otpauth_uri(secret=FIXED_SECRET, issuer="Café Ünïcode", username="zoë")
    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
    assert unquote(parts.path) == "/Café Ünïcode:zoë"
    query = parse_qs(parts.query)
    assert query == {
        "secret": [FIXED_SECRET], "issuer": ["Café Ünïcode"], "algorithm": ["SHA1"], "digits": ["6"], "period": ["30"]
    }


# --- match_step ------------------------------------------------------------------------------

NOW = 1_700_000_000.0  # any fixed instant
STEP = totp.step_at(NOW)


@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_match_step_accepts_one_step_of_drift(offset):
    code = totp.code_at_step(FIXED_SECRET, STEP + offset)
    assert totp.match_step(FIXED_SECRET, code, unix_time=NOW) == STEP + offset


@pytest.mark.parametrize("offset", [-3, -2, 2, 3])
def test_match_step_refuses_two_steps_or_more(offset):
    code = totp.code_at_step(FIXED_SECRET, STEP + offset)
    # Guard against a coincidental collision with a step inside the window.
    assert code not in {totp.code_at_step(FIXED_SECRET, STEP + d) for d in (-1, 0, 1)}
    assert totp.match_step(FIXED_SECRET, code, unix_time=NOW) is None


def test_match_step_refuses_a_code_of_another_secret():
    other = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    code = totp.code_at_step(other, STEP)
    assert code not in {totp.code_at_step(FIXED_SECRET, STEP + d) for d in (-1, 0, 1)}
    assert totp.match_step(FIXED_SECRET, code, unix_time=NOW) is None
    assert totp.match_step(other, code, unix_time=NOW) == STEP


def test_match_step_window_follows_the_period_boundary():
    start_of_step = STEP * totp.PERIOD
    code = totp.code_at_step(FIXED_SECRET, STEP + 1)
    assert totp.match_step(FIXED_SECRET, code, unix_time=start_of_step) == STEP + 1
    assert totp.match_step(FIXED_SECRET, code, unix_time=start_of_step - 0.001) is None


# --- secrets and display ---------------------------------------------------------------------

def test_generate_secret_is_160_random_bits_in_base32():
    secrets_made = {totp.generate_secret() for _ in range(50)}
    assert len(secrets_made) == 50
    for secret in secrets_made:
        assert len(secret) == 32 and "=" not in secret
        assert len(b32decode(secret)) == 20


def test_format_secret_groups_by_four():
    assert totp.format_secret(FIXED_SECRET) == "GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ"
    assert totp.format_secret(FIXED_SECRET).replace(" ", "") == FIXED_SECRET


def test_qr_svg_is_inline_svg_with_a_title_and_no_external_reference():
    svg = totp.qr_svg("otpauth://totp/A:b?secret=X", title="QR for b")
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert "<title>QR for b</title>" in svg
    assert "http" not in svg and "<image" not in svg
