"""The bench's client-side bookkeeping (bench/run.py, bench/httpload.py): what it hands out
must match what the server accepts, or a bench run reports refused codes or a false rate."""
import statistics

import time_machine

from bench.httpload import Result
from bench.run import Exhausted, TotpPool, leg_bounds, leg_order

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


def test_combined_rate_is_the_mean_of_the_legs_rates():
    short, long_ = Result(ops=100, elapsed=1.0), Result(ops=600, elapsed=3.0)  # 100/s and 200/s
    both = Result.combined([short, long_])
    assert both.rate == 150.0  # pooled ops over seconds would say 175/s
    assert both.ops == 700 and both.elapsed == 4.0
    assert Result(ops=50, elapsed=2.0).rate == 25.0


def test_a_legs_argon2_bound_is_the_median_of_the_windows_on_both_sides_of_it():
    gaps = [[50.0, 52.0], [60.0, 62.0], [70.0, 90.0], [10.0, 80.0]]  # before leg 0, between legs, after the last
    assert leg_bounds(gaps, [0, 2]) == [(0, 56.0), (2, 75.0)]
    assert leg_bounds(gaps, [1]) == [(1, 66.0)]


def test_legs_run_in_rounds_of_a_b_b_a_so_each_systems_mean_time_is_the_same():
    assert leg_order(1, rounds=2) == (0,)
    assert leg_order(2) == (0, 1, 1, 0)
    order = leg_order(2, rounds=2)
    assert order == (0, 1, 1, 0, 0, 1, 1, 0)
    three = leg_order(3, rounds=2)
    assert three == (0, 1, 2, 2, 1, 0) * 2
    for legs in (order, three):  # a drift linear in time weighs on every system alike
        means = {i: statistics.mean(p for p, s in enumerate(legs) if s == i) for i in set(legs)}
        assert len(set(means.values())) == 1
