"""Mask what would let a listener identify a caller or the operator.

Phone numbers, card numbers and e-mails are replaced in transcript text, written
as digits (Whisper usually writes digits) or as Russian number words; so is the
operator's first name when they introduce themselves ("меня зовут Ольга") or
when the recording's operator field names them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from difflib import SequenceMatcher

from pipeline.review import first_names

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
# Dictated addresses: "ivan.petrov собака mail точка ru", "иван точка петров собака ...":
# the local part may itself be dictated in words joined by "точка", "тире" ...
_SPOKEN_JOIN = r"(?:точка|тире|дефис|(?:нижнее\s+)?подч[её]ркивание|[._\-])"
_SPOKEN_EMAIL = re.compile(
    rf"(?:[\w\-]+\s*{_SPOKEN_JOIN}\s*)*[\w.\-]+\s+(?:собака|собачка|эт)\s+[\w\-]+(?:\s*(?:точка|\.)\s*[\w\-]+)+",
    re.IGNORECASE,
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
    """First names the operator introduces themselves with ("меня зовут Ольга"):
    a known first name, or a capitalised word as Whisper writes an unusual or
    misheard name ("меня зовут Доми"), never "с вами свяжется"."""
    names: set[str] = set()
    for text in operator_texts:
        for match in _INTRO.finditer(text):
            word = match.group(1).lower()
            if word not in _NOT_NAMES and (first_names.is_name(word) or match.group(1)[0].isupper()):
                names.add(word)
    return names


def name_variants(operator: str | None) -> set[str]:
    """Words of a recording's operator field worth masking ("Ольга Петрова" -> ольга, петрова)."""
    if not operator:
        return set()
    return {w.lower() for w in re.findall(r"[А-ЯЁа-яёA-Za-z]{3,}", operator)}


# Words of an operator's greeting that are never their name, however close they sound.
_GREETING_WORDS = {
    "добрый", "доброе", "доброго", "день", "дня", "утро", "вечер", "здравствуйте", "алло", "слушаю", "меня", "зовут",
    "магазин", "интернет", "компания", "оператор", "менеджер", "консультант", "приветствует", "чем", "могу", "помочь",
    "спасибо", "звонок", "сегодня", "дом", "дома",
}


def greeting_names(greeting_texts: Iterable[str]) -> set[str]:
    """First names said in the operator's greeting («Скин Стори», Светлана,
    здравствуйте): theirs, so their short forms are masked too."""
    return {w for text in greeting_texts for w in re.findall(r"[а-яё]{2,}", text.lower()) if first_names.is_name(w)}


def garbled_names(greeting_texts: Iterable[str], names: set[str]) -> set[str]:
    """Words of the operator's greeting that look like a misheard form of their
    own name ("Магазин Электрон, Доми, здравствуйте" for Дмитрий / Дима):
    capitalised inside a sentence, as Whisper writes names, with the same first
    letter and similar length and letters."""
    targets = first_names.forms_of(names)
    found = set()
    for text in greeting_texts:
        for m in re.finditer(r"[А-ЯЁ][а-яё]{3,}", text):
            before = text[:m.start()].rstrip()
            word = m.group(0).lower().replace("ё", "е")
            if not before or before[-1] in ".!?…" or word in _GREETING_WORDS or word in targets:
                continue
            if any(word[0] == t[0] and abs(len(word) - len(t)) <= 2 and SequenceMatcher(None, word, t).ratio() >= 0.5
                   for t in targets):
                found.add(word)
    return found


_ENDINGS = "а|я|и|ы|е|у|ю|ой|ей|ёй|ою|ею"  # Ольга, Оли, Олю, Олей ...
_FOND = "еньк|оньк|ечк|очк|ушк|юшк|юш|уш"  # Оленька, Олечка, Ванюша ...
_OBLIQUE = {"павел": "павл", "лев": "льв"}  # Павла, Льва


def _forms_regex(name: str) -> str:
    """A regex for the name in every case: Ольга/Ольги/Ольгой, Оля/Олю/Оленька,
    Сергей/Сергея, Иван/Иваном, Смирнова/Смирновой; ё and е alike."""
    n = name.lower().replace("ё", "е")
    if n[-1] in "ая":
        stem = re.escape(n[:-1])
        alts = [f"{stem}(?:{_ENDINGS})", f"{stem}(?:{_FOND})(?:{_ENDINGS})"]
    elif n[-1] in "йь":
        alts = [f"{re.escape(n[:-1])}(?:й|ь|я|ю|е|ем|ём|и|ей|ью)"]
    elif n[-1] in "оеиыуэю":
        alts = [re.escape(n)]
    else:
        alts = [f"{re.escape(n)}(?:а|у|ом|ем|е|ы|и|ой)?"]
        if n in _OBLIQUE:
            alts.append(f"{_OBLIQUE[n]}(?:а|у|ом|е)")
    return "|".join(alts).replace("е", "[её]")


def _names_pattern(names: Iterable[str]) -> re.Pattern[str] | None:
    alts = sorted({_forms_regex(n) for n in names if len(n) >= 2}, key=len, reverse=True)
    return re.compile(r"(?<![\w])(?:" + "|".join(alts) + r")(?![\w])", re.IGNORECASE) if alts else None


_COMMON_NAMES = _names_pattern(first_names.ALL - first_names.AMBIGUOUS)
# Patronymics (Сергеевна, Игоревича) name a customer as surely as a first name.
_PATRONYMIC = re.compile(r"(?<![\w])[А-ЯЁ][а-яё]+(?:(?:овн|евн|ичн)(?:а|ы|е|у|ой)|(?:ович|евич)(?:а|у|ем|е)?)(?![\w])")


def mask_text(text: str, names: Iterable[str] = ()) -> str:
    """``text`` with phones, cards, e-mails, common first names (anyone's: the
    customer's are personal data too) and the given names replaced by placeholders."""
    return _mask(text, _names_pattern(names))


def _mask(text: str, names: re.Pattern[str] | None) -> str:
    text = _EMAIL.sub(EMAIL, text)
    text = _SPOKEN_EMAIL.sub(EMAIL, text)
    text = _DIGIT_RUN.sub(lambda m: _mask_digit_run(m, m.string), text)
    text = _SPOKEN_NUMBER.sub(PHONE, text)
    for pattern in (names, _COMMON_NAMES, _PATRONYMIC):
        if pattern is not None:
            text = pattern.sub(NAME, text)
    return text


class Masker:
    """Masks every utterance of one call: its operator's names as introduced,
    as in the operator field, in their short and fond forms, and as misheard
    in the greeting; besides phones, e-mails, cards and common first names."""

    def __init__(self, operator_texts: Iterable[str], operator: str | None = None) -> None:
        texts = list(operator_texts)
        greeting = texts[:2]
        own = detect_operator_names(texts) | name_variants(operator) | greeting_names(greeting)
        own |= garbled_names(greeting, own)
        self._pattern = _names_pattern(first_names.forms_of(own))

    def __call__(self, text: str) -> str:
        return _mask(text, self._pattern)
