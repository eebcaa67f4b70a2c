"""Resemblyzer's GE2E voice encoder without torch: its mel frames in numpy,
its three-layer LSTM in onnxruntime, the weights read from the
``pretrained.pt`` inside its wheel.

Importing resemblyzer brought torch (2.2 s, 230 MB), librosa and a numba
compilation (3.5 s and 230 MB more) into every process that met a mono call,
and on a fresh machine 33 s more on the first call while numba filled its
cache. The embeddings are the same (within 1e-6 of torch's;
``tests/test_transcribe.py``), and onnxruntime's LSTM is faster than torch's
here (600 windows of 1.5 s: 2.2 s against 3.1 s on 2 cores).
"""

from __future__ import annotations

import functools
import importlib.util
import pickle
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from pipeline.config import available_cores
from pipeline.speech.audio import SAMPLE_RATE

N_FFT = 400  # 25 ms windows...
HOP = 160  # ...every 10 ms
N_MELS = 40
FRAMES_PER_S = SAMPLE_RATE // HOP
NORM_DBFS = -30.0  # resemblyzer's volume target (audio_norm_target_dBFS)


def weights_path() -> Path:
    """``pretrained.pt`` of the installed resemblyzer, found without importing it
    (its ``__init__`` imports torch)."""
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("resemblyzer is not installed: `pip install resemblyzer==0.1.4` (it carries the voice encoder's weights)")
    return Path(next(iter(spec.submodule_search_locations))) / "pretrained.pt"


class _Storage:
    def __init__(self, dtype: np.dtype):
        self.dtype, self.data = dtype, None


_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "LongStorage": np.int64, "IntStorage": np.int32}


class _LegacyUnpickler(pickle.Unpickler):
    """torch's legacy (pre-1.6) checkpoint pickle: tensors point at storages
    whose bytes follow the pickle; they are built once those are read."""

    def __init__(self, f, storages: dict[str, _Storage]):
        super().__init__(f)
        self.storages = storages

    def find_class(self, module: str, name: str):
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return lambda storage, offset, size, stride, *_: (storage, offset, tuple(size), tuple(stride))
        if module == "torch" and name in _DTYPES:
            return name
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        raise pickle.UnpicklingError(f"unexpected {module}.{name} in a voice encoder checkpoint")

    def persistent_load(self, pid):
        _, kind, key, *_ = pid  # ("storage", type, key, location, size, ...)
        return self.storages.setdefault(key, _Storage(np.dtype(_DTYPES[kind])))


def read_legacy_state(path: str | Path, entry: str = "model_state") -> dict[str, np.ndarray]:
    """``torch.load(path)[entry]`` as numpy arrays, for a checkpoint in torch's
    legacy format (a magic number, protocol and system pickles, the object
    pickle, the storage keys, then each storage's bytes after its length)."""
    storages: dict[str, _Storage] = {}
    with open(path, "rb") as f:
        for _ in range(3):
            pickle.load(f)
        obj = _LegacyUnpickler(f, storages).load()
        for key in pickle.load(f):
            s = storages[key]
            n = int(np.frombuffer(f.read(8), "<i8")[0])
            s.data = np.frombuffer(f.read(n * s.dtype.itemsize), s.dtype)
    out = {}
    for name, (s, offset, size, stride) in obj[entry].items():
        out[name] = np.lib.stride_tricks.as_strided(s.data[offset:], size, [st * s.dtype.itemsize for st in stride]).copy()
    return out


@functools.lru_cache(maxsize=1)
def _mel_basis() -> np.ndarray:
    """Slaney mel filters, 0-8 kHz, as librosa's defaults (and Whisper's): the same for every call."""
    from faster_whisper.feature_extractor import FeatureExtractor

    return FeatureExtractor.get_mel_filters(SAMPLE_RATE, N_FFT, N_MELS).astype(np.float32)


def mel_frames(audio: np.ndarray) -> np.ndarray:
    """Frames x 40 power mel spectrogram of 16 kHz audio, its volume first set to
    -30 dBFS: resemblyzer's ``wav_to_mel_spectrogram(normalize_volume(...))``
    (librosa's centred STFT, zero-padded, periodic Hann window)."""
    audio = audio.astype(np.float32)
    rms = float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))) if audio.size else 0.0
    if rms > 0:
        audio = audio * np.float32(10 ** (NORM_DBFS / 20) / rms)
    padded = np.pad(audio, N_FFT // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    return (power.astype(np.float32) @ _mel_basis().T).astype(np.float32)


class VoiceEncoder:
    """256-dimensional unit voice embeddings of mel stretches: the three LSTM
    layers run by onnxruntime (faster-whisper's own dependency, for Silero),
    as a graph built here from the checkpoint's weights."""

    BATCH = 16  # stretches per run: 128 took 1.3x as long (dev VoIP calls, docs/benchmarks.md), and a 3-minute call's 330 at once held 400 MB

    def __init__(self, path: str | Path | None = None, threads: int = 1):
        import onnxruntime

        w = read_legacy_state(path or weights_path())
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.enable_cpu_mem_arena = False  # the arena kept a long call's peak (175 MB) for the process's life
        self.session = onnxruntime.InferenceSession(_lstm_graph(w), options, providers=["CPUExecutionProvider"])
        self.linear_w, self.linear_b = w["linear.weight"].T.copy(), w["linear.bias"]

    def __call__(self, mels: np.ndarray | list[np.ndarray]) -> np.ndarray:
        """Embeddings of mel stretches (frames x 40 each; a 3-d array of equal
        ones or a list): the top LSTM layer's state after each one's last
        frame, through a linear layer and a ReLU, unit length. Stretches of
        other lengths share a batch, padded, each with its own length."""
        items = [np.asarray(m, dtype=np.float32) for m in mels]
        if not items:
            return np.zeros((0, self.linear_w.shape[1]), np.float32)
        # batches of like lengths: a batch runs every stretch to its longest one's end
        order = sorted(range(len(items)), key=lambda i: len(items[i]))
        last = np.empty((len(items), self.linear_w.shape[0]), np.float32)
        for i in range(0, len(items), self.BATCH):
            batch = order[i : i + self.BATCH]
            last[batch] = self._last_states([items[k] for k in batch])
        e = np.maximum(last @ self.linear_w + self.linear_b, 0.0)
        return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)

    def _last_states(self, items: list[np.ndarray]) -> np.ndarray:
        lengths = np.array([len(m) for m in items], dtype=np.int32)
        x = np.zeros((lengths.max(), len(items), N_MELS), np.float32)  # time-major
        for i, m in enumerate(items):
            x[: len(m), i] = m
        return self.session.run(None, {"mels": x, "lengths": lengths})[0][0]


def _lstm_graph(w: dict[str, np.ndarray]) -> bytes:
    """An ONNX graph of resemblyzer's three-layer LSTM with its weights
    (torch's gates, input, forget, cell, output, reordered to ONNX's input,
    output, forget, cell); its output is each sequence's last state."""
    from onnx import TensorProto, helper, numpy_helper

    h = w["lstm.weight_hh_l0"].shape[1]
    order = np.r_[0:h, 3 * h : 4 * h, h : 2 * h, 2 * h : 3 * h]
    nodes, weights, prev = [], [], "mels"
    for k in range(3):
        bias = np.concatenate([w[f"lstm.bias_ih_l{k}"][order], w[f"lstm.bias_hh_l{k}"][order]])
        for name, a in ((f"W{k}", w[f"lstm.weight_ih_l{k}"][order]), (f"R{k}", w[f"lstm.weight_hh_l{k}"][order]), (f"B{k}", bias)):
            weights.append(numpy_helper.from_array(np.ascontiguousarray(a[None], dtype=np.float32), name))
        nodes.append(helper.make_node("LSTM", [prev, f"W{k}", f"R{k}", f"B{k}", "lengths"], [f"Y{k}", f"last{k}"], hidden_size=h))
        if k < 2:
            nodes.append(helper.make_node("Squeeze", [f"Y{k}", "axis1"], [f"out{k}"]))  # (time, 1, batch, h) -> (time, batch, h)
            prev = f"out{k}"
    weights.append(numpy_helper.from_array(np.array([1], np.int64), "axis1"))
    graph = helper.make_graph(
        nodes, "ge2e",
        [helper.make_tensor_value_info("mels", TensorProto.FLOAT, ["time", "batch", N_MELS]), helper.make_tensor_value_info("lengths", TensorProto.INT32, ["batch"])],
        [helper.make_tensor_value_info("last2", TensorProto.FLOAT, [1, "batch", h])],
        initializer=weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8  # onnxruntime reads up to its own version; 8 is old enough for all in use
    return model.SerializeToString()


_lock = threading.Lock()
_encoder: VoiceEncoder | None = None


def voice_encoder() -> VoiceEncoder:
    """The process's encoder, loaded on first need (17 MB read, 0.1 s)."""
    global _encoder
    with _lock:
        if _encoder is None:
            _encoder = VoiceEncoder(threads=available_cores())
        return _encoder
