"""bench/leaveout.py's tables: the Wilson interval of each row's label precision, the summary
of which rows it places below or above the target, and where runs of another size live
(pure rendering; the benchmark itself runs with `python bench/leaveout.py`)."""
import importlib.util
import math
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("bench_leaveout", ROOT / "bench" / "leaveout.py")
leaveout = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(leaveout)


def _row(labels: int, precision: float) -> dict:
    return {"turns": 1500, "accepted_pairs": 100, "labels": labels, "labels_conf90": labels // 2,
            "pair_precision": 0.95, "label_precision": precision, "label_precision_conf90": 0.95,
            "ece": 0.05, "coverage": 0.3, "lift_recovered": 0.5}


def test_wilson_interval_matches_the_textbook_value_and_narrows_with_labels():
    low, high = leaveout.precision_ci(0.9, 30)       # 27 of 30: Wilson 95% (0.744, 0.965)
    assert math.isclose(low, 0.7438, abs_tol=1e-3) and math.isclose(high, 0.9654, abs_tol=1e-3)
    low300, high300 = leaveout.precision_ci(0.9, 300)
    assert low < low300 < 0.9 < high300 < high
    assert all(math.isnan(x) for x in leaveout.precision_ci(0.0, 0))


def test_table_has_the_interval_column_and_the_summary_names_rows_below_the_target():
    rows = {"aa-AA": _row(30, 0.7), "bb-BB": _row(400, 0.99), "cc-CC": _row(30, 0.9), "dd-DD": _row(0, 0.0)}
    text = leaveout.table(rows, "locale")
    head, _, first = text.splitlines()[:3]
    assert head.count("|") == first.count("|") and "label precision 95% CI" in head
    assert "| 0.700 | 0.52–0.83 |" in first
    summary = leaveout.ci_summary(rows)
    assert "wholly below 0.93 in 1 of 3 (aa-AA)" in summary and "at or above it in 1;" in summary


def test_runs_of_another_size_never_share_the_default_folder():
    assert leaveout.runs_dir(leaveout.LOCALE_TURNS, leaveout.HINT3_TURNS) == leaveout.WORK / "runs"
    assert leaveout.runs_dir(4000, leaveout.HINT3_TURNS).name == f"runs-4000-{leaveout.HINT3_TURNS}"


def test_error_table_lists_each_status_in_the_checks_order_and_the_target_friction_split():
    a = {**_row(30, 0.9), "by_logs_check": {"unknown_intent": {"labels": 10, "precision": 0.7},
                                           "confirmed": {"labels": 20, "precision": 1.0}},
         "label_clean_by_target_friction": {"target_friction": {"accepted": 5, "label_clean_share": 0.8},
                                            "target_no_friction": {"accepted": 95, "label_clean_share": 0.95}}}
    b = {**_row(4, 1.0), "by_logs_check": {"uninformative": {"labels": 4, "precision": 1.0}}}
    text = leaveout.error_table({"locales": a, "hint3-x": b, "old report": _row(3, 1.0)})
    head, _, first, second = text.splitlines()
    assert head.index("confirmed") < head.index("uninformative") < head.index("unknown_intent")
    assert first == "| locales | 20 / 1.000 | 0 | 10 / 0.700 | 5 / 0.800 | 95 / 0.950 |"
    assert second == "| hint3-x | 0 | 4 / 1.000 | 0 |  |  |"
    assert leaveout.error_table({"old report": _row(3, 1.0)}) == ""


def test_the_header_names_the_commit_it_is_given_not_the_checkout_at_render_time():
    import argparse
    args = argparse.Namespace(seed=13, locale_turns=1500, hint3_turns=4000, set=[], min_users="default")
    text = leaveout.render(args, [], ["pl-PL"], {}, [], 60.0, "abc1234")
    assert "(commit `abc1234`;" in text.splitlines()[2]
