"""Russian first names with their everyday short and fond forms, for masking.

Listeners must not learn whose call they hear, and customers' names are
personal data: every name here is masked wherever it appears. ``AMBIGUOUS``
names are also common words ("света" is "of light", "тема" a topic once ё is
read as е), so they are masked only where the call's operator is known to
bear them (the operator field, an introduction)."""

from __future__ import annotations

# One line per person's name: the full form(s) first, then short and fond forms.
_GROUPS = """
александр александра саша саня шура
алексей лёша алёша
анатолий толя
андрей андрюша
антон
артём тёма
аркадий аркаша
борис боря
вадим вадик
валентин валентина валя
валерий валерия валера лера
василий василиса вася
виктор виктория витя вика
виталий виталик
владимир вова володя
владислав влад
вячеслав слава
георгий гоша жора
глеб
григорий гриша
даниил данила даня
денис
дмитрий дима митя
евгений евгения женя
егор
иван ваня
игорь
илья илюша
кирилл
константин костя
леонид лёня
максим макс
матвей
михаил миша
никита
николай коля
олег
павел паша
пётр петя
роман рома
руслан
сергей серёжа
станислав стас
степан стёпа
тимофей тима
тимур
фёдор федя
юрий юра
ярослав
агата
алина
алиса
алла
алёна
ангелина
анастасия настя
анна аня
арина
белла
вероника
галина галя
дарья даша
диана
ева
екатерина катя катюша
елена лена
елизавета лиза
жанна
зоя
инна
ирина ира
карина
кира
кристина
ксения ксюша
лариса
лидия лида
любовь люба
людмила люда
маргарита рита
марина
мария маша
милана
надежда надя
наталья наталия наташа
нина
оксана
ольга оля
полина поля
раиса рая
светлана света
софья софия соня
таисия тая
тамара
татьяна таня
ульяна
эвелина
элина
юлия юля
яна
вера
лев
роза
лилия
майя
ника
""".strip()

def _plain(word: str) -> str:
    """Lower case, ё read as е: Whisper writes either."""
    return word.lower().replace("ё", "е")


GROUPS: list[frozenset[str]] = [frozenset(_plain(w) for w in line.split()) for line in _GROUPS.splitlines()]

# Also ordinary words (or are once ё reads as е): masked only when known to be the operator's.
AMBIGUOUS = frozenset(_plain(w) for w in ("вера", "надежда", "любовь", "люба", "роман", "слава", "тёма", "женя", "коля",
                                          "поля", "света", "марина", "лев", "роза", "лилия", "майя", "ника", "рая"))

ALL = frozenset().union(*GROUPS)


def is_name(word: str) -> bool:
    return _plain(word) in ALL


def forms_of(names: set[str]) -> set[str]:
    """Every form of the people these names belong to ("оля" -> ольга, оля),
    spelt with е for ё."""
    plain = {_plain(n) for n in names}
    out = set(plain)
    for group in GROUPS:
        if group & plain:
            out |= group
    return out
