"""bench/audit_curve.py's own logic: the summary per N, the smallest N that reaches the
target, the ECE noise floor. The benchmark itself runs by hand (bench/AUDIT.md)."""
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import audit_curve  # noqa: E402  (bench/audit_curve.py)


def _records():
    ece = {25: [0.06, 0.02], 50: [0.03, 0.025], 100: [0.02, 0.01]}
    return [{"corpus": "slurp", "n": n, "seed": s, "ece": e, "exported": 100, "ece_exported": e,
             "precision_conf90": 0.95, "refused": n == 25 and s == 0} for n, es in ece.items() for s, e in enumerate(es)]


def test_smallest_n_by_mean_and_by_every_seed():
    summary = audit_curve.summarize(_records())
    assert summary["share_le_target"].tolist() == [0.5, 1.0, 1.0]
    assert summary["refused"].tolist() == [1, 0, 0]      # a one-sided sample: the packaged map kept
    assert audit_curve.smallest_n(summary, "slurp", "ece_mean", 0.03) == "50"
    assert audit_curve.smallest_n(summary, "slurp", "share_le_target", 1.0) == "50"
    assert audit_curve.smallest_n(summary, "slurp", "ece_mean", 0.001) == "not reached"


def test_noise_floor_shrinks_with_more_labels():
    rng = np.random.default_rng(0)
    small, large = rng.uniform(0.5, 1, 100), rng.uniform(0.5, 1, 10_000)
    assert audit_curve.noise_floor(large) < audit_curve.noise_floor(small) < 0.15


def test_write_md_keeps_the_hand_written_notes(tmp_path):
    md = tmp_path / "AUDIT.md"
    audit_curve.write_md(md, "# tables v1\n")
    assert md.read_text() == "# tables v1\n"
    md.write_text(md.read_text() + f"\n{audit_curve.NOTES_MARK}\n## Reading the figures\n\nby hand\n")
    audit_curve.write_md(md, "# tables v2\n")
    assert md.read_text() == f"# tables v2\n\n{audit_curve.NOTES_MARK}\n## Reading the figures\n\nby hand\n"
    md.write_text(f"# old\n\n{audit_curve.NOTES_MARK}")        # the marker alone is kept too
    audit_curve.write_md(md, "# tables v3\n")
    assert md.read_text() == f"# tables v3\n\n{audit_curve.NOTES_MARK}"
