"""The bench's pure parts (bench/cpu.py, bench/report.py, bench/loadwrk.py): reading /proc,
the groups' median and spread, the criteria's verdicts, and what wrk is told to send. A wrong
sum or a flipped ratio here would print a verdict the run does not support."""
import os

import pytest

from bench import report
from bench.cpu import TICK, cpu_of, median_spread, parse_stat, spent
from bench.loadwrk import Plan, lua_spec, lua_string, parse_output, raw


def test_parse_stat_reads_utime_and_stime_after_a_name_with_spaces_and_parentheses():
    fields = ["S", "1", "1", "1", "0", "-1", "0", "0", "0", "0", "0", str(3 * TICK), str(TICK // 2 * 2), "7", "9"]
    text = "4242 (gunicorn: worker (x) [y]) " + " ".join(fields)
    assert parse_stat(text) == pytest.approx(3 + (TICK // 2 * 2) / TICK)


def test_cpu_of_this_process_matches_its_own_clock_and_leaves_out_the_gone():
    for _ in range(300_000):
        pass
    got = cpu_of([os.getpid(), 2**22 + 12345])
    assert list(got) == [os.getpid()]
    assert abs(got[os.getpid()] - sum(os.times()[:2])) < 0.05


def test_spent_counts_a_process_that_appeared_from_zero():
    before = {1: 2.0, 2: 1.0}
    after = {1: 2.5, 2: 1.0, 3: 0.25}  # 3 started during the leg (a new PostgreSQL backend)
    assert spent(before, after) == pytest.approx(0.75)


def test_median_spread_ignores_legs_without_operations():
    assert median_spread([3.0, None, 1.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 3.0, "n": 3}
    assert median_spread([None])["median"] is None


def test_group_ratio_is_theirs_over_ours_within_each_group():
    ours, theirs = [10.0, 20.0, 10.0], [30.0, 20.0, 25.0]
    assert report.group_ratio(ours, theirs) == {"median": 2.5, "min": 1.0, "max": 3.0, "n": 3}


def _system(cpu_by_group, **extra):
    return {"scenarios": {k: {"cpuMsPerOpByGroup": v} for k, v in cpu_by_group.items()}, "peakRssKiBPerWorker": [102400], **extra}


def _result(ours, hash_only, two_factor, allauth, large=None):
    systems = {"1k": _system(ours), "hash only": _system(hash_only), "two-factor": _system(two_factor), "allauth": _system(allauth)}
    if large:
        systems["1m"] = _system(large)
    return {"systems": systems}


def _by_name(rows):
    return {r["criterion"]: r for r in rows}


def test_criteria_verdicts_follow_the_median_of_the_groups_and_their_targets():
    ours = {"password_api": [30.0, 30.0, 30.0], "totp_page": [10.0, 10.0, 10.0], "totp_api": [5.0, 5.0, 5.0],
            "refresh": [4.0, 4.0, 4.0], "users_list": [10.0, 10.0, 10.0]}
    rows = _by_name(report.criteria(_result(
        ours, hash_only={"password_api": [28.0, 27.0, 29.0]},
        two_factor={"totp_page": [29.0, 31.0, 35.0]},  # 2.9, 3.1, 3.5: median 3.1 >= 3
        allauth={"password_api": [29.0, 33.0, 31.0], "totp_api": [9.0, 9.5, 11.0], "refresh": [8.0, 8.0, 7.0]},
        large={"password_api": [33.0, 33.0, 33.0], "users_list": [12.0, 12.0, 12.0]})))
    hash_row = rows["Password sign-in (API): CPU of the hash alone behind the same server / ours"]
    assert hash_row["value"] == 0.933 and hash_row["spread"] == [0.9, 0.967] and hash_row["holds"] is True
    assert rows["TOTP step (page) vs django-two-factor-auth: their CPU per verify / ours"]["holds"] is True
    assert rows["TOTP step (API) vs django-allauth: their CPU per verify / ours"]["holds"] is False  # 1.9
    assert rows["Password sign-in (API) vs django-allauth: their CPU per sign-in / ours"]["value"] == 1.033
    assert rows["Refresh with rotation vs django-allauth headless: their CPU per refresh / ours"]["holds"] is True
    # 1M at 33 ms against 1k at 30 ms: 0.909 holds 0.9; the list page at 0.833 holds its own 0.8
    assert rows["1M / 1k users: Password sign-in (API) (CPU per op of 1k / of 1M)"]["holds"] is True
    assert rows["1M / 1k users: Users API list page (CPU per op of 1k / of 1M)"]["holds"] is True
    # what a peer has no interface for is named, not judged
    cannot = rows["TOTP step (API) vs django-two-factor-auth: their CPU per verify / ours"]
    assert cannot["holds"] is None and "no API" in cannot["note"]
    # a comparison this run did not make is "not measured", never a verdict
    assert rows["Password sign-in (page) vs django-allauth: their CPU per sign-in / ours"]["holds"] is None
    assert rows["Peak RSS per worker (MiB)"]["value"].startswith("1k: 100.0")


def test_the_criteria_table_prints_holds_and_does_not_hold():
    rows = report.criteria(_result({"refresh": [4.0, 4.0, 4.0]}, {}, {}, {"refresh": [4.0, 5.0, 6.0]}))
    table = report.criteria_table(rows)
    line = next(x for x in table.splitlines() if x.startswith("| Refresh with rotation vs django-allauth"))
    assert "| 1.250 | 1.000-1.500 | >= 2 | **does not hold** |" in line


def test_lua_strings_escape_every_byte_that_is_not_plain_printable():
    assert lua_string('a"b\\c\r\n') == '"a\\034b\\092c\\013\\010"'
    assert lua_string("é".encode()) == '"\\195\\169"'


def test_a_plan_becomes_raw_requests_in_a_lua_table():
    req = raw("POST", "/x", host="h:1", body=b'{"a": 1}', headers={"Content-Type": "application/json"})
    assert req == b'POST /x HTTP/1.1\r\nHost: h:1\r\nContent-Length: 8\r\nContent-Type: application/json\r\n\r\n{"a": 1}'
    spec = lua_spec(Plan(expect=302, mode="once", reqs=[req]))
    assert spec.startswith("return {") and "expect = 302" in spec and 'mode = "once"' in spec and "\\013\\010" in spec


def test_parse_output_reads_the_scripts_json_line():
    got = parse_output('Running 1s test\n\nBENCH_JSON {"ok": 3, "bad": 1, "tokens": ["t"]}\n')
    assert got == {"ok": 3, "bad": 1, "tokens": ["t"]}
    with pytest.raises(ValueError):
        parse_output("wrk: error\n")


def test_spreads_are_max_minus_min_over_the_median_with_the_worst_named():
    result = {"systems": {"1k": {"scenarios": {"refresh": {"cpuMsPerOpByGroup": [4.0, 5.0, 6.0], "opsPerSByGroup": [10.0, 10.0, 40.0]},
                                               "empty": {"cpuMsPerOpByGroup": [1.0, 1.0, 1.1], "opsPerSByGroup": [5.0, 5.0, 5.0]}}}}}
    got = report.spreads(result)
    assert got["cpuMsPerOpByGroup"] == {"median": 0.4, "worst": 0.4, "worstAt": "Refresh with rotation on 1k"}
    assert got["opsPerSByGroup"]["worst"] == 3.0
