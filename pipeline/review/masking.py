"""Mask what would let a listener identify a caller or the operator.

Phone numbers, card numbers and e-mails are replaced in transcript text, written
as digits (Whisper usually writes digits) or as Russian number words; so is the
operator's first name when they introduce themselves ("меня зовут Ольга") or
when the recording's operator field names them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

PHONE = "[телефон]"
CARD = "[номер карты]"
EMAIL = "[e-mail]"
NAME = "[имя]"

# Runs of digits joined by spaces, dashes, dots, slashes or brackets, with an
# optional leading "+". Masked when the run holds 7+ digits (a local phone
# number is 7); 13-19 digits is a card.
_DIGIT_RUN = re.compile(r"\+?\(?\d[\d\s().\-/]*\d")
_THOUSANDS = re.compile(r"^\d{1,3}(?:[ .]\d{3})+$")
_CURRENCY_AFTER = re.compile(r"^\s*(?:руб|р\.|₽|тыс|евро|доллар|\$|€)", re.IGNORECASE)

_NUMBER_WORDS = (
    "ноль нуль один одна два две три четыре пять шесть семь восемь девять десять одиннадцать двенадцать "
    "тринадцать четырнадцать пятнадцать шестнадцать семнадцать восемнадцать девятнадцать двадцать "
    "тридцать сорок пятьдесят шестьдесят семьдесят восемьдесят девяносто сто двести триста четыреста "
    "пятьсот шестьсот семьсот восемьсот девятьсот плюс"
).split()
_NUM_TOKEN = r"(?:\d+|" + "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True)) + r")"
# Five or more number words/digit groups in a row, as in "восемь девятьсот двенадцать
# триста сорок пять шестьдесят семь"; prices contain "тысяч" and so break the run.
_SPOKEN_NUMBER = re.compile(
    rf"(?<![\w]){_NUM_TOKEN}(?:[\s,\-]+{_NUM_TOKEN}){{4,}}(?![\w])", re.IGNORECASE
)

_EMAIL = re.compile(r"[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+", re.UNICODE)
# Dictated addresses: "ivan.petrov собака mail точка ru"
_SPOKEN_EMAIL = re.compile(
    r"[\w.\-]+\s+(?:собака|собачка|эт)\s+[\w\-]+(?:\s*(?:точка|\.)\s*[\w\-]+)+", re.IGNORECASE
)

_TITLES = r"(?:(?:ваш|ваша|старший|старшая)\s+)?(?:менеджер|консультант|оператор|продавец|специалист|администратор)?"
_INTRO = re.compile(
    r"(?:меня\s+зовут|зовут\s+меня|мо[её]\s+имя|с\s+вами\s+(?:говорит\s+)?|на\s+связи|вас\s+приветствует|"
    r"это\s+" + _TITLES + r"(?=\s))\s*" + _TITLES + r"\s*([А-ЯЁа-яё]{3,})",
    re.IGNORECASE,
)
_NOT_NAMES = {
    "магазин", "магазина", "компания", "компании", "сеть", "отдел", "служба", "менеджер", "консультант",
    "оператор", "продавец", "специалист", "администратор", "ваш", "ваша", "звоню", "звонок", "так",
    "вот", "очень", "просто", "конечно", "хорошо", "правильно", "самый", "самое", "нужно", "можно",
}


def _mask_digit_run(match: re.Match[str], text: str) -> str:
    run = match.group(0)
    digits = re.sub(r"\D", "", run)
    if len(digits) < 7:
        return run
    if _THOUSANDS.match(run.strip()) and _CURRENCY_AFTER.match(text[match.end():]):
        return run  # a price such as "1 250 000 рублей"
    if 13 <= len(digits) <= 19 and not run.lstrip().startswith(("+7", "8 (", "+")):
        return CARD
    return PHONE


def detect_operator_names(operator_texts: Iterable[str]) -> set[str]:
    """First names the operator introduces themselves with ("меня зовут Ольга")."""
    names: set[str] = set()
    for text in operator_texts:
        for match in _INTRO.finditer(text):
            word = match.group(1).lower()
            if word not in _NOT_NAMES:
                names.add(word)
    return names


def name_variants(operator: str | None) -> set[str]:
    """Words of a recording's operator field worth masking ("Ольга Петрова" -> ольга, петрова)."""
    if not operator:
        return set()
    return {w.lower() for w in re.findall(r"[А-ЯЁа-яёA-Za-z]{3,}", operator)}


def _name_pattern(names: Iterable[str]) -> re.Pattern[str] | None:
    stems = set()
    for name in names:
        name = name.lower()
        # Cover Russian case endings: ольга/ольги/ольгой, иван/ивана/иваном.
        stem = name[:-1] if len(name) >= 5 and name[-1] in "аяьйоеиы" else name
        stems.add(re.escape(stem))
    if not stems:
        return None
    return re.compile(r"(?<![\w])(?:" + "|".join(sorted(stems, key=len, reverse=True)) + r")[а-яёa-z]{0,3}(?![\w])", re.IGNORECASE)


def mask_text(text: str, names: Iterable[str] = ()) -> str:
    """``text`` with phones, cards, e-mails and the given names replaced by placeholders."""
    text = _EMAIL.sub(EMAIL, text)
    text = _SPOKEN_EMAIL.sub(EMAIL, text)
    text = _DIGIT_RUN.sub(lambda m: _mask_digit_run(m, m.string), text)
    text = _SPOKEN_NUMBER.sub(PHONE, text)
    pattern = _name_pattern(names)
    if pattern is not None:
        text = pattern.sub(NAME, text)
    return text


class Masker:
    """Masks every utterance of one call with the names found in that call."""

    def __init__(self, operator_texts: Iterable[str], operator: str | None = None) -> None:
        self.names = detect_operator_names(operator_texts) | name_variants(operator)

    def __call__(self, text: str) -> str:
        return mask_text(text, self.names)
