"""Masking of phones, cards, e-mails and the operator's name in transcript text."""

from __future__ import annotations

import pytest

from pipeline.review.masking import CARD, EMAIL, NAME, PHONE, Masker, detect_operator_names, mask_text


@pytest.mark.parametrize(
    "text, hidden, placeholder",
    [
        ("Мой номер +7 (912) 345-67-89, запишите", "345-67-89", PHONE),
        ("позвоните на 89123456789", "89123456789", PHONE),
        ("восемь девять один два три четыре пять шесть семь восемь девять", "девять один два", PHONE),
        ("домашний 345 67 89", "345 67 89", PHONE),
        ("карта 4276 1600 1234 5678", "4276", CARD),
        ("номер карты 4276160012345678", "4276160012345678", CARD),
        ("почта ivan.petrov@mail.ru", "ivan.petrov", EMAIL),
        ("пишите ivan собака mail точка ru", "ivan", EMAIL),
    ],
)
def test_identifiers_are_masked(text, hidden, placeholder):
    masked = mask_text(text)
    assert hidden not in masked and placeholder in masked


def test_prices_and_short_numbers_stay():
    text = "Холодильник стоит 54 990 рублей, гарантия 3 года, а тот за 1 250 000 рублей."
    assert mask_text(text) == text
    assert mask_text("двадцать пять тысяч девятьсот девяносто") == "двадцать пять тысяч девятьсот девяносто"


@pytest.mark.parametrize(
    "intro, name",
    [
        ("Добрый день, магазин Электрон, меня зовут Ольга, чем помочь?", "ольга"),
        ("здравствуйте, с вами говорит менеджер иван", "иван"),
        ("Электрон, на связи Сергей", "сергей"),
        ("вас приветствует консультант Марина", "марина"),
    ],
)
def test_operator_introduced_name_is_detected(intro, name):
    assert detect_operator_names([intro]) == {name}


def test_operator_name_is_masked_in_all_forms():
    mask = Masker(["Добрый день, меня зовут Ольга."], operator="Ольга Смирнова")
    out = mask("Спасибо, Ольга! А Ольги завтра не будет? Смирновой передайте.")
    assert "Ольг" not in out and "Смирнов" not in out and out.count(NAME) == 3
    assert detect_operator_names(["это телевизор, меня зовут магазин"]) == set()
