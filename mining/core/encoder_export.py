"""Export of a sentence-transformers model to the CPU runtimes of
:mod:`mining.core.encoders` (ONNX Runtime, OpenVINO; fp32, bf16 or int8), and the pieces the
exported model needs around it: the folder's tokenizer settings and pooling.

Export once, offline, from the local model folder (never a hub): ``torch.onnx.export``
(TorchScript exporter, opset 17, dynamic batch and token axes), then for ``onnx-int8``
``onnxruntime.quantization.quantize_dynamic`` (int8 per-channel weights, activations
quantized per batch at run time; ONNX Runtime's quantization docs); ``openvino.convert_model``
of the torch module (``openvino-bf16`` uses the same model file and asks for bf16 at compile
time), then for ``openvino-int8`` ``nncf.quantize`` (static post-training int8,
``ModelType.TRANSFORMER``, calibrated on sample texts: NNCF's post-training quantization, as
optimum-intel's ``OVQuantizer`` that sentence-transformers' OpenVINO helper runs). Importing
this module is cheap: torch, transformers and the runtimes are imported inside functions.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
import uuid
from pathlib import Path

import numpy as np

from mining.errors import ConfigError

log = logging.getLogger(__name__)


#: CPU runtimes of the sentence-transformers encoder (``embedding.backend``); ``"torch"`` is
#: the reference. runtime → (file the export writes, Python modules the runtime needs).
RUNTIMES: dict[str, tuple[str, tuple[str, ...]]] = {
    "torch": ("", ()),
    "onnx": ("model.onnx", ("onnxruntime", "onnx")),
    "onnx-int8": ("model.onnx", ("onnxruntime", "onnx")),
    "openvino": ("openvino_model.xml", ("openvino",)),
    "openvino-bf16": ("openvino_model.xml", ("openvino",)),
    "openvino-int8": ("openvino_model.xml", ("openvino", "nncf")),
}
#: Texts that calibrate ``openvino-int8`` (sentence-transformers' OpenVINO helper uses 300).
CALIBRATION_TEXTS = 300


def _check_runtime(runtime: str) -> None:
    if runtime not in RUNTIMES:
        raise ConfigError(f"unknown encoder runtime {runtime!r}; valid: {', '.join(RUNTIMES)}")


def runtime_model_id(model_id: str, runtime: str) -> str:
    """Cache key of ``model_id``'s vectors when ``runtime`` computes them: ``model_id`` itself
    for ``"torch"`` (existing caches stay valid), else ``"<model_id>-<runtime>"``."""
    _check_runtime(runtime)
    return model_id if runtime == "torch" else f"{model_id}-{runtime}"


def missing_runtime_modules(runtime: str) -> list[str]:
    """The Python modules ``runtime`` needs that are not installed (``[]``: usable)."""
    from importlib.util import find_spec

    _check_runtime(runtime)
    return [m for m in RUNTIMES[runtime][1] if find_spec(m) is None]


def st_layout(path: str) -> dict:
    """What a sentence-transformers folder's ``modules.json`` says about its Transformer and
    Pooling modules: ``transformer`` (folder), ``max_seq_length``, ``do_lower_case``,
    ``pooling`` (``"mean"`` or ``"cls"``), ``dim`` (embedding width). Reads the Pooling
    config as sentence-transformers < 6 (``pooling_mode_*_tokens`` flags,
    ``word_embedding_dimension``) and ≥ 6 (``pooling_mode``, ``embedding_dimension``) save it.
    Raises ``ValueError`` for other pooling modes and for modules the exported runtimes do
    not run (anything but Transformer, Pooling and Normalize, e.g. a Dense projection: its
    vectors would silently differ from torch's)."""
    root = Path(path)
    modules = json.loads((root / "modules.json").read_text())
    folder = {m["type"].rsplit(".", 1)[-1]: root / m["path"] for m in modules}
    other = sorted(set(folder) - {"Transformer", "Pooling", "Normalize"})
    if other:
        raise ConfigError(f"{path}: modules {other} are not run by the exported runtimes; "
                         "use embedding.backend = \"torch\"")
    st_cfg = folder["Transformer"] / "sentence_bert_config.json"
    cfg = json.loads(st_cfg.read_text()) if st_cfg.exists() else {}
    pool = json.loads((folder["Pooling"] / "config.json").read_text())
    if "pooling_mode" in pool:          # sentence-transformers >= 6
        mode = pool["pooling_mode"]
        modes = [mode] if isinstance(mode, str) else list(mode)
    else:
        modes = [k.split("_")[2] for k, v in pool.items() if k.startswith("pooling_mode_") and v]
    if modes not in (["mean"], ["cls"]):
        raise ConfigError(f"{path}: pooling {modes} not supported by the exported runtimes (mean or cls)")
    return {"transformer": str(folder["Transformer"]), "max_seq_length": cfg.get("max_seq_length"),
            "do_lower_case": bool(cfg.get("do_lower_case")), "pooling": modes[0],
            "dim": int(pool.get("word_embedding_dimension") or pool["embedding_dimension"])}


def tokenize(tokenizer, layout: dict, texts: list[str]) -> dict[str, np.ndarray]:
    """int64 ``(n, tokens)`` model inputs, as sentence-transformers' Transformer module makes
    them (padding to the longest, ``longest_first`` truncation at ``max_seq_length``)."""
    if layout["do_lower_case"]:
        texts = [t.lower() for t in texts]
    enc = tokenizer(texts, padding=True, truncation="longest_first", max_length=layout["max_seq_length"],
                    return_tensors="np")
    return {k: np.asarray(enc[k], dtype=np.int64) for k in tokenizer.model_input_names if k in enc}


def runtime_tokenizer(layout: dict):
    """``texts → {input name: int64 (n, tokens)}``, the inputs :func:`tokenize` makes, from the
    ``tokenizers`` library alone when the folder has ``tokenizer.json`` (what transformers'
    fast tokenizer wraps, set up as sentence-transformers calls it: truncation at
    ``max_seq_length``, padding to the longest), so that a Python worker neither imports
    transformers nor torch (~2 s of CPU); else transformers' ``AutoTokenizer``."""
    folder = Path(layout["transformer"])
    if not (folder / "tokenizer.json").exists():
        from transformers import AutoTokenizer

        hf = AutoTokenizer.from_pretrained(str(folder))
        return lambda texts: tokenize(hf, layout, texts)
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    cfg_file = folder / "tokenizer_config.json"
    cfg = json.loads(cfg_file.read_text()) if cfg_file.exists() else {}
    max_len = layout["max_seq_length"] or cfg.get("model_max_length")
    if max_len and max_len < 1e9:   # transformers' "no limit" sentinel is 1e30
        tok.enable_truncation(max_length=int(max_len))
    else:
        tok.no_truncation()
    pad = cfg.get("pad_token") or "[PAD]"
    pad = pad["content"] if isinstance(pad, dict) else pad
    tok.enable_padding(pad_id=tok.token_to_id(pad) or 0, pad_token=pad)

    def run(texts: list[str]) -> dict[str, np.ndarray]:
        encs = tok.encode_batch([t.lower() for t in texts] if layout["do_lower_case"] else list(texts))
        return {"input_ids": np.array([e.ids for e in encs], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encs], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in encs], dtype=np.int64)}
    return run


def pool_tokens(hidden: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """float32 ``(n, dim)``: the mean of ``hidden`` (n, tokens, dim) over unmasked tokens, or the
    first ([CLS]) token's state."""
    if mode == "cls":
        return hidden[:, 0].astype(np.float32)
    m = mask[..., None].astype(np.float32)
    return (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)


def _hidden_module(layout: dict, names: list[str]):
    """The transformer as a torch module ``(*inputs named names) → last_hidden_state``."""
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(layout["transformer"], attn_implementation="eager").eval()

    class Hidden(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, *inputs):
            return self.model(**dict(zip(names, inputs))).last_hidden_state

    return Hidden()


def _export(layout: dict, runtime: str, folder: Path, calibration_texts: list[str]) -> None:
    """Write ``runtime``'s model of ``layout`` into ``folder`` (see :func:`export_model`)."""
    import torch
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(layout["transformer"])
    example = tokenize(tokenizer, layout, ["a short one", "and a somewhat longer example sentence"])
    names = list(example)
    module = _hidden_module(layout, names)
    args = tuple(torch.from_numpy(example[n]) for n in names)
    if runtime.startswith("onnx"):
        fp32 = folder / ("model-fp32.onnx" if runtime == "onnx-int8" else "model.onnx")
        axes = {n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]}
        with torch.no_grad():
            torch.onnx.export(module, args, str(fp32), input_names=names, output_names=["last_hidden_state"],
                              dynamic_axes=axes, opset_version=17, dynamo=False)
        if runtime == "onnx-int8":
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(str(fp32), str(folder / "model.onnx"), weight_type=QuantType.QInt8, per_channel=True)
            fp32.unlink()
        return
    import openvino as ov

    with torch.no_grad():
        model = ov.convert_model(module, example_input=args)
    for port, name in zip(model.inputs, names):
        port.get_tensor().set_names({name})
    if runtime == "openvino-int8":
        import nncf

        nncf.set_log_level(logging.ERROR)
        batches = [tokenize(tokenizer, layout, calibration_texts[i:i + 16])
                   for i in range(0, len(calibration_texts), 16)]
        with contextlib.redirect_stdout(sys.stderr):   # progress bars: never on a stage's stdout
            model = nncf.quantize(model, nncf.Dataset(batches), model_type=nncf.ModelType.TRANSFORMER,
                                  subset_size=len(calibration_texts))
    ov.save_model(model, str(folder / "openvino_model.xml"), compress_to_fp16=False)


def export_model(model_path: str, runtime: str, export_dir: str | Path,
                 calibration_texts: list[str] | None = None) -> Path:
    """The model file of ``runtime`` in ``export_dir``, exported from the sentence-transformers
    folder ``model_path`` (``""``: packaged all-MiniLM-L6-v2) when not there yet; offline.

    Written once, atomically (a temporary sibling folder renamed into place; when two
    processes race, the first rename wins and the other's copy is dropped), with an
    ``export.json`` naming runtime, source and library versions. ``openvino-int8`` needs
    ``calibration_texts`` (the first :data:`CALIBRATION_TEXTS` are used; the texts to be
    encoded are a fair sample); an existing export is returned as it is. Raises
    ``ValueError`` for ``"torch"``, an unknown runtime or missing calibration texts,
    ``ImportError`` naming the missing packages."""
    from importlib.metadata import version

    _check_runtime(runtime)
    if runtime == "torch":
        raise ValueError("runtime 'torch' loads the model folder itself: nothing to export")
    target = Path(export_dir)
    model_file = target / RUNTIMES[runtime][0]
    if model_file.exists():
        return model_file
    missing = missing_runtime_modules(runtime)
    if missing:
        raise ImportError(f"encoder runtime {runtime!r} needs {', '.join(missing)}: "
                          "pip install 'utterance-mining[backends]'")
    calibration = list(calibration_texts or [])[:CALIBRATION_TEXTS]
    if runtime == "openvino-int8" and not calibration:
        raise ValueError("runtime 'openvino-int8' needs calibration_texts for its first export")
    from mining.core.encoders import resolve_model_path

    source = resolve_model_path(model_path)
    # under the cache folder's .staging/: an export killed mid-way (OOM in nncf.quantize) is
    # swept there by the next night's ensure_embeddings (mining.io.storage.sweep_staging)
    tmp = target.parent / ".staging" / f"{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        _export(st_layout(source), runtime, tmp, calibration)
        meta = {"runtime": runtime, "source": source, "calibration_texts": len(calibration),
                "versions": {m: version(m) for m in ("torch", "transformers", *RUNTIMES[runtime][1])}}
        (tmp / "export.json").write_text(json.dumps(meta, indent=1) + "\n")
        try:
            os.rename(tmp, target)
        except OSError:
            if not model_file.exists():
                raise
        log.info("exported %s for %s into %s", source, runtime, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            tmp.parent.rmdir()   # .staging/, when nothing else is in it
        except OSError:
            pass
    return model_file


def export_in_child(model_path: str, runtime: str, export_dir: str | Path,
                    calibration_texts: list[str] | None = None) -> Path:
    """:func:`export_model` in a child Python process (this interpreter): the conversion
    imports torch and transformers (~1 GB), and OpenVINO's converter resets the py4j
    connections of a Spark driver that runs it in-process. Raises ``RuntimeError`` with the
    child's last stderr lines when it fails."""
    import subprocess
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".json", encoding="utf-8") as args:
        json.dump({"model_path": model_path, "runtime": runtime, "export_dir": str(export_dir),
                   "calibration_texts": calibration_texts}, args)
        args.flush()
        done = subprocess.run([sys.executable, "-m", "mining.core.encoder_export", args.name],
                              capture_output=True, text=True, check=False)
    if done.returncode:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"export of the {runtime} encoder failed (exit {done.returncode}): {tail}")
    return Path(export_dir) / RUNTIMES[runtime][0]


if __name__ == "__main__":   # python -m mining.core.encoder_export ARGS.json (export_in_child)
    from mining import env

    env.offline_models()
    export_model(**json.loads(Path(sys.argv[1]).read_text(encoding="utf-8")))
