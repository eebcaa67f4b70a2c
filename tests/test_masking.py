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


def test_short_fond_and_misheard_forms_of_the_operators_name_are_masked():
    """«Оля», «Оленька» for Ольга; «Доми» as Whisper misheard Дмитрий in the greeting;
    the name said in the greeting («Скин Стори», Светлана) brings its short forms."""
    olga = Masker(["Добрый день, магазин Электрон."], operator="Ольга")
    out = olga("Оля, спасибо! Оленька, Олечка, передайте Олю, с Олей поговорю.")
    assert "Ол" not in out and out.count(NAME) == 5
    dmitry = Masker(["Магазин Электрон, Доми, здравствуйте.", "Сейчас посмотрю."], operator="Дмитрий")
    out = dmitry("Доми, вы слышите? Да, Дима. Спасибо, Дмитрий, и Митеньке привет. Дома буду, сейчас.")
    assert out == f"{NAME}, вы слышите? Да, {NAME}. Спасибо, {NAME}, и {NAME} привет. Дома буду, сейчас."
    sveta = Masker(["«Скин Стори», Светлана, здравствуйте."])
    assert sveta("Света, Светочка, спасибо!") == f"{NAME}, {NAME}, спасибо!"
    artyom = Masker(["Меня зовут Артем."])  # Whisper writes е for ё
    assert artyom("Тёма, Артёму, Артемом") == f"{NAME}, {NAME}, {NAME}"


def test_customers_names_and_patronymics_are_masked_but_words_are_not():
    """Anyone's common first name is masked; names that are also words («света»,
    «тема», «жена») only where the operator bears them; ordinary words never."""
    mask = Masker(["Здравствуйте, магазин Электрон."])
    out = mask("Меня зовут Анна Сергеевна, а мужа Павел Игоревич, жена Павла просила.")
    assert out == f"Меня зовут {NAME} {NAME}, а мужа {NAME} {NAME}, жена {NAME} просила."
    plain = "Мало света, тема разговора, с вами свяжется менеджер, жена и дом, любой цвет."
    assert mask(plain) == plain
    assert detect_operator_names(["и с вами свяжется менеджер"]) == set()


def test_a_dictated_email_is_masked_from_its_first_word():
    for text in ("пишите: иван точка петров собака mail точка ru, жду",
                 "почта ivan тире petrov собака yandex точка ru, жду"):
        out = mask_text(text)
        assert out.endswith(f"{EMAIL}, жду") and "иван" not in out and "petrov" not in out, out
