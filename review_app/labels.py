"""Russian headers and values for the owner's tables on screen. The reports
keep stable English column keys and values, which the CSV and XLSX downloads
and ``callreview report`` write for scripts to read; only what the owner
reads in the app is translated, here."""

from __future__ import annotations

import logging
import re
from typing import Any

import altair as alt
import pandas as pd

log = logging.getLogger(__name__)

COLUMNS = {
    "adherence": "выполнение скрипта", "alpha": "альфа Криппендорфа", "audio_calls": "звонков (аудио)",
    "auto_adherence": "выполнение (машина)", "auto_off_script": "фраз вне скрипта на звонок (машина)",
    "avg_order_value": "средний заказ", "avg_response_time": "среднее время ответа, с", "calls": "звонков",
    "calls_with_outcome": "звонков с итогом", "chat_avg_response_time": "чат: среднее время ответа, с",
    "chat_first_response_time": "чат: первый ответ, с", "chats": "чатов", "checklist": "скрипт",
    "client_talk": "речь клиента, с", "comments": "комментарии", "confirmed": "подтверждено слушателями",
    "conversion": "конверсия", "conversion_lift": "прирост конверсии", "correct": "верно",
    "count": "раз", "covered_in": "закрыто в скрипте", "done_aov": "средний заказ, шаг выполнен",
    "done_calls": "звонков, шаг выполнен", "done_conversion": "конверсия, шаг выполнен", "done_orders": "заказов, шаг выполнен",
    "duration": "длительность, с", "estimate": "поправленная оценка", "examples": "примеры", "file": "файл",
    "first_response_time": "первый ответ, с", "first_seen": "впервые", "fleiss": "каппа Флейса", "gold": "эталон",
    "gold_agreement": "согласие с эталоном", "gold_kappa": "каппа с эталоном", "gold_reviews": "эталонных отзывов",
    "gold_steps": "шагов с эталоном", "incorrect": "неверно", "interruptions_by_client": "перебивает клиент",
    "interruptions_by_operator": "перебивает оператор", "interval_vs_listeners": "ширина интервала к слушателям",
    "items": "пункты", "kind": "тип", "label": "ситуация", "last_seen": "последний раз", "listener": "слушатель",
    "listeners_done": "выполнен (слушатели)", "longest_silence": "самая долгая пауза, с",
    "machine_found": "найден машиной", "margin_of_error": "погрешность ±", "marks": "оценки", "missing": "пропущен",
    "not_done_aov": "средний заказ, шаг не выполнен", "not_done_calls": "звонков, шаг не выполнен",
    "not_done_conversion": "конверсия, шаг не выполнен", "not_done_orders": "заказов, шаг не выполнен",
    "not_in_script": "нет в скрипте", "operator": "оператор", "operator_talk": "речь оператора, с",
    "overlap_time": "одновременная речь, с", "pay": "к оплате", "peer_agreement": "согласие с коллегами",
    "peer_kappa": "каппа с коллегами", "peer_steps": "шагов с коллегами", "percent": "согласие",
    "period": "период", "pipeline": "машина", "pipeline_agreement": "согласие с машиной",
    "pipeline_kappa": "каппа с машиной", "pipeline_steps": "шагов с машиной", "random_reviews": "случайно выбранных",
    "rate": "ставка", "reached": "дошли до шага", "reached_share": "доля дошедших", "recording_id": "№ записи",
    "response_latency_mean": "задержка ответа, среднее, с", "response_latency_median": "задержка ответа, медиана, с",
    "responses": "ответов", "reviewed_calls": "прослушано", "reviews": "отзывов", "scope": "какие звонки",
    "silence_share": "доля тишины", "since_covered": "раз после закрытия", "situation": "№ ситуации",
    "status": "статус", "step": "шаг", "step_id": "код шага", "stopped_here": "остановились здесь",
    "talk_listen_ratio": "говорит / слушает", "units": "пунктов", "version": "версия",
    "population": "звонков всего", "confidence": "уверенность", "margin": "погрешность", "sample_size": "размер выборки",
    "priority": "приоритет", "share": "доля", "figure": "показатель", "category": "оценка", "vs": "с кем",
    "kappa": "каппа", "group": "группа", "missed": "без ответа", "missed_share": "доля без ответа",
    "rated_chats": "с оценкой", "rating": "оценка посетителя", "reviewed_by": "проверил", "reviewer": "проверил",
    "comment": "комментарий",
}
SUFFIXES = {"_low": "нижняя граница", "_high": "верхняя граница", "_n": "число"}
VALUES = {
    "(all steps)": "(все шаги)", "(all)": "(все)", "(no step done)": "(ни одного шага)", "(none)": "(нет)",
    "(unknown)": "(не указан)", "audio": "звонок", "chat": "чат",
    "calls without an order": "звонки без заказа", "all calls (no CRM outcomes imported)": "все звонки (итоги из CRM не загружены)",
    "open": "открыта", "not yet confirmed": "не подтверждено", "correct": "верно", "incorrect": "неверно",
    "not_in_script": "нет в скрипте", "missing": "пропущен", "found": "найден",
    "low adherence": "низкое выполнение", "no order": "нет заказа", "short call": "короткий звонок",
}
PATTERNS = [
    (re.compile(r"^still occurs after v(\d+)$"), r"встречается и после v\1"),
    (re.compile(r"^not seen since v(\d+)$"), r"не встречается после v\1"),
]
MARKS = re.compile(r"\b(correct|incorrect|not_in_script|missing|found)\b")  # inside "lena: correct; max: missing"
VERSIONED = re.compile(r"^v(\d+)_(.+)$")  # the versions report: v1_calls, v2_correct, ...


def header(col: str) -> str:
    """The Russian header of a report column; an unknown one stays as it is."""
    if col in COLUMNS:
        return COLUMNS[col]
    m = VERSIONED.match(col)
    if m:
        return f"v{m.group(1)}: {header(m.group(2))}"
    for suffix, word in SUFFIXES.items():
        if col.endswith(suffix) and col[: -len(suffix)] in COLUMNS:
            return f"{COLUMNS[col[: -len(suffix)]]}: {word}"
    return col


def value(v: Any) -> Any:
    """A report value as the owner reads it; numbers, names and free text stay."""
    if not isinstance(v, str):
        return v
    if v in VALUES:
        return VALUES[v]
    for pattern, repl in PATTERNS:
        if pattern.match(v):
            return pattern.sub(repl, v)
    return v


def for_screen(df: pd.DataFrame) -> pd.DataFrame:
    """A copy with the English values of the reports in Russian (headers go in column_config)."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype.kind in "OSUT" or str(out[col].dtype) in ("object", "string", "str"):
            out[col] = out[col].map(value)
    if "marks" in out.columns:
        out["marks"] = out["marks"].map(lambda s: MARKS.sub(lambda m: VALUES[m.group(1)], s) if isinstance(s, str) else s)
    if "priority" in out.columns:
        out["priority"] = out["priority"].map(lambda s: ", ".join(value(p) for p in s.split(", ")) if isinstance(s, str) and s else s)
    return out


def tip(field: str, fmt: str | None = None) -> alt.Tooltip:
    """A chart tooltip titled in Russian: ``tip("share:Q", ".0%")``."""
    name = field.split(":")[0]
    return alt.Tooltip(field, title=header(name), format=fmt) if fmt else alt.Tooltip(field, title=header(name))


_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|>~<$:&])")


def literal(text: object) -> str:
    """Text someone typed (a listener's reason, a user name, a chat, a transcript)
    as Markdown that shows it as typed: no image fetched, no link, no heading.
    Escaping stops Markdown links; a bare address would still be turned into a
    link, so a zero-width space goes after its "://" and "www"."""
    text = re.sub(r"(://|www)", "\\1\u200b", str(text), flags=re.IGNORECASE)
    return _MARKDOWN.sub(r"\\\1", text)


# The pipeline's errors are written in English for the CLI and the logs; the
# pages say them in Russian. Each pattern matches one message the pages can meet.
_ERRORS = [
    (r"The user name is empty\.", "Имя пользователя пустое."),
    (r"The password for '(.+)' is too short: use at least (\d+) characters\.", r"Пароль для «\1» слишком короткий: нужно не меньше \2 символов."),
    (r"A user named '(.+)' already exists\.", r"Пользователь «\1» уже есть."),
    (r"The password for '(.+)' contains the user name\.", r"Пароль для «\1» содержит имя пользователя."),
    (r"The password for '(.+)' is one of the most common ones\.", r"Пароль для «\1» слишком распространённый: его подберут первым."),
    (r"No user named '(.+)'\.", r"Пользователя «\1» нет."),
    (r"No user with id (\d+)\.", r"Пользователя №\1 нет."),
    (r"No active listeners to assign calls to\..*", "Нет активных слушателей: сначала добавьте слушателя на странице «Пользователи»."),
    (r"Overlap needs at least two listeners.*", "Для двойного прослушивания нужны хотя бы два слушателя: поставьте долю 0 или добавьте слушателя."),
    (r"No active listener named (.+?)\..*", r"Нет активного слушателя «\1»: проверьте имена на странице «Пользователи»."),
    (r"Choose a situation.*", "Выберите ситуацию."),
    (r"Script '(.+)' has no version (\d+)\..*", r"У скрипта «\1» нет версии \2: сначала загрузите эту версию скрипта."),
    (r"(.+): cannot read the text encoding.*", r"\1: не удалось прочитать кодировку, сохраните CSV в UTF-8."),
    (r"(.+): no column (.+?); the file has (.+?)\..*", r"\1: нет столбца \2; в файле есть столбцы: \3."),
    (r"(.+?): the file is empty.*", r"\1: файл пустой."),
    (r"(.+?): file not found.*", r"\1: файл не найден."),
    (r"(.+?): (not a readable audio file|cannot be decoded|not a file).*", r"\1: это не аудиозапись или файл повреждён."),
    (r"(.+?): contains no audio stream.*", r"\1: в файле нет звука."),
    (r"(.+?): the audio stream has no channels.*", r"\1: звуковая дорожка повреждена."),
    (r"(.+?): the recording is 0 seconds long.*", r"\1: запись нулевой длины."),
    (r"(.+?): the recording is (\d+) min long, more than the (\d+) min limit.*", r"\1: запись длится \2 мин, больше предела в \3 мин."),
    (r"(.+?): decodes to no audio at all.*", r"\1: в записи нет звука (повреждена или пуста)."),
    (r"(.+?): decodes to .* too short to use", r"\1: запись слишком короткая."),
    (r"(.+?): no messages with text found.*", r"\1: в выгрузке чата нет сообщений с текстом (нужны столбцы времени, автора и текста)."),
    (r"(.+?): not valid JSON.*", r"\1: файл JSON повреждён."),
    (r"(.+?): not UTF-8 text", r"\1: файл не в кодировке UTF-8."),
    (r"(.+?), message (\d+): (no time|cannot read the time).*", r"\1, сообщение \2: нет времени или его не удалось прочитать."),
    (r"(.+?): same audio as (.+), stored before", r"\1: та же запись, что и «\2», уже загружена."),
]
_ERRORS_RE = [(re.compile(pattern, re.DOTALL), ru) for pattern, ru in _ERRORS]
_FILE_PREFIX = re.compile(r"^([^:\s][^:]{0,200}\.[A-Za-z0-9]{1,5}): ")


def error(exc: BaseException | str) -> str:
    """A pipeline error as the owner reads it on a page. A message this
    catalogue does not know is logged in full on the server and shown as a
    plain Russian sentence (with the file name when it starts with one)."""
    message = str(exc)
    for pattern, ru in _ERRORS_RE:
        if pattern.fullmatch(message):
            return pattern.sub(ru, message)
    log.warning("shown to the owner as a general error: %s", message)
    name = _FILE_PREFIX.match(message)
    return (f"{name.group(1)}: " if name else "") + "не удалось выполнить действие; подробности — в журнале сервера."
