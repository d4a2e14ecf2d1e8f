"""The bench's TOTP scheduling (bench/totp.py): what it hands out must match what the server
accepts (RFC 6238: one code per user and time step, within one step of now), or a bench run
reports refused codes."""
import time_machine

from bench.httpload import Exhausted
from bench.totp import Totp, TotpPool

STEP_START = 1_800_000_000 - 1_800_000_000 % 30  # a time-step boundary


def take_all(pool: TotpPool) -> list[tuple[str, int]]:
    out = []
    while True:
        try:
            out.append(pool.take())
        except Exhausted:
            return out


def test_open_codes_counts_exactly_what_take_hands_out_and_no_user_step_twice():
    last = {"b": int(STEP_START // 30)}  # b already spent the current step
    with time_machine.travel(STEP_START + 5, tick=False):
        pool = TotpPool(["a", "b", "c"], last)
        assert pool.open_codes(within=10) == 3 + 1 + 3  # steps cur-1..cur+1; b only cur+1
        taken = take_all(pool)
    assert len(taken) == 7 and len(set(taken)) == 7
    assert TotpPool(["a", "b", "c"], last).open_codes(within=0) == 0


def test_a_step_about_to_leave_the_window_is_not_counted_and_not_handed_out():
    with time_machine.travel(STEP_START + 20, tick=False):
        pool = TotpPool(["a"], {})
        assert pool.open_codes(within=12) == 2  # cur-1 falls out before the group ends
        assert pool.open_codes(within=5) == 3
    with time_machine.travel(STEP_START + 28.5, tick=False):
        assert [s for _, s in take_all(TotpPool(["a"], {}))] == [STEP_START // 30, STEP_START // 30 + 1]


def test_open_codes_respects_what_each_user_has_left():
    sessions = {"a": 1, "b": 0, "c": 5}
    with time_machine.travel(STEP_START + 5, tick=False):
        pool = TotpPool(list(sessions), {}, left=lambda u: sessions[u])
        assert pool.open_codes(within=5) == 1 + 0 + 3
        assert {u for u, _ in take_all(pool)} == {"a", "c"}


def test_take_many_hands_out_each_user_step_once_and_stops_when_none_is_open():
    with time_machine.travel(STEP_START + 5, tick=False):
        pool = TotpPool(["a", "b"], {})
        got = pool.take_many(10, within=10)
        assert sorted(got) == sorted((u, STEP_START // 30 + d) for u in "ab" for d in (-1, 0, 1))
        assert pool.take_many(5, within=10) == []


def test_a_code_valid_within_the_legs_seconds_skips_the_step_about_to_expire():
    with time_machine.travel(STEP_START + 25, tick=False):
        got = TotpPool(["a"], {}).take_many(5, within=20)
    assert [s for _, s in got] == [STEP_START // 30, STEP_START // 30 + 1]


def test_codes_are_rfc_6238():
    # RFC 6238 appendix B, SHA-1, T = 59 s: 94287082 (8 digits); the bench uses the last 6
    totp = Totp("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")  # base32 of "12345678901234567890"
    assert totp.code(59 // 30) == "287082"
