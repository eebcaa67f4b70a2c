"""The review app through Streamlit's AppTest: login, roles, queue, blind call
page, marking, draft restore, submit."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest
from test_review_data import OPERATOR_NAME, SECRETS, STEP_IDS, build_world

from pipeline.storage.ingest import low_coverage_calls
from pipeline.storage.store import Review, StepMark, session_scope

APP = str(Path(__file__).resolve().parent.parent / "review_app" / "app.py")


@pytest.fixture(autouse=True)
def navigation_mode(monkeypatch):
    """AppTest resets ``PagesManager.uses_pages_directory`` before every run, and
    a ``pages/`` folder then flips it to the old folder-based mode, which runs a
    page file without ``app.py``. The real server leaves that mode at the first
    ``st.navigation`` call; do the same here."""
    from streamlit.runtime.pages_manager import PagesManager

    original = PagesManager.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)


@pytest.fixture
def world(tmp_path, monkeypatch, db_url):
    """Every app test runs on a SQLite file and on PostgreSQL (``db_url``)."""
    w = build_world(tmp_path, url=db_url, calls=2, listeners=2)
    monkeypatch.setenv("CALLREVIEW_DATABASE_URL", w.url)
    monkeypatch.setenv("CALLREVIEW_DATA_DIR", str(w.data_dir))
    monkeypatch.setenv("CALLREVIEW_SECRET_KEY", "test-secret")
    return w


def login(name: str, password: str = "secret-pass") -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30).run()
    at.text_input(key="login_name").input(name)
    at.text_input(key="login_password").input(password)
    at.button[0].click().run()
    return at


def rendered(at: AppTest) -> str:
    """All text the page shows (markdown, captions, labels, widget values)."""
    parts = []
    for kind in ("markdown", "caption", "title", "subheader", "header", "info", "warning", "error", "success", "text"):
        parts += [str(e.value) for e in getattr(at, kind)]
    for w in list(at.radio) + list(at.checkbox) + list(at.text_input) + list(at.button):
        parts.append(str(w.label))
        parts.append(str(getattr(w, "value", "")))
    for w in at.radio:
        parts += [str(o) for o in w.options]
    # as the browser shows it: Markdown escapes and zero-width spaces gone (review_app.labels.literal)
    return re.sub(r"\\(.)", r"\1", "\n".join(parts)).replace("\u200b", "")


def open_call(at: AppTest, assignment_id: int) -> AppTest:
    at.query_params["call"] = str(assignment_id)
    at.switch_page("pages/review.py").run()
    assert not at.exception, at.exception
    return at


def test_wrong_password_is_refused(world):
    at = login("anna", "nope-nope")
    assert at.error and "Неверное" in at.error[0].value
    assert at.title[0].value == "Вход"


def test_the_login_page_stops_guessing(world, monkeypatch):
    from pipeline.review import accounts

    # a minute's wait after the DELAY_AFTER-th failure, not 1 s: a slow page run
    # must not outlast the wait before the next try (the waits, with explicit times: test_accounts)
    monkeypatch.setattr(accounts, "_wait", lambda n, delay_after, lock_after: 60.0 if n >= delay_after else 0.0)
    with session_scope(world.url) as s:
        accounts.add_user(s, "guesser", "listener", "secret-pass")
    for _ in range(accounts.DELAY_AFTER):
        assert "Неверное" in login("guesser", "nope-nope").error[0].value
    at = login("guesser")  # the right password, but within the wait
    assert "Слишком много неверных паролей" in at.error[0].value and at.title[0].value == "Вход"


def test_listener_sees_queue_and_cannot_reach_owner_pages(world):
    at = login("anna")
    assert not at.exception
    assert at.title[0].value == "Мои звонки"
    assert "Отправлено 0 из 2" in rendered(at) or at.get("progress")
    for page in ("pages/owner_upload.py", "pages/owner_users.py", "pages/owner_urgent.py"):
        with pytest.raises(ValueError):
            at.switch_page(page)


def test_owner_sees_owner_pages(world):
    at = login("owner")
    assert not at.exception
    assert at.title[0].value == "Срочные сделки"
    at.switch_page("pages/owner_users.py").run()
    assert not at.exception and "anna" in rendered(at) + str([d.value for d in at.dataframe])
    # calls whose transcript misses speech are flagged for the owner, with where to listen
    at.switch_page("pages/owner_progress.py").run()
    assert not at.exception
    with session_scope(world.url) as s:
        low = low_coverage_calls(s)
    assert low and any(f"Звонков с речью без расшифровки: {len(low)}" in w.value for w in at.warning)
    assert "0:28–0:32" in str([d.value for d in at.dataframe])


def test_the_owner_sees_when_the_database_was_last_backed_up(world, tmp_path):
    from pipeline.storage import backups

    at = login("owner")
    at.switch_page("pages/owner_progress.py").run()
    assert any("Резервных копий базы ещё не было" in w.value for w in at.warning)
    backups.backup(world.url, tmp_path / "nightly.db")
    at.switch_page("pages/owner_progress.py").run()
    assert not at.warning or not any("ещё не было" in w.value for w in at.warning)
    assert "Последняя резервная копия" in rendered(at) and "nightly.db" in rendered(at)


def test_call_page_is_blind_and_marks_are_a_draft(world):
    aid = world.assignment_ids["anna"][0]
    at = open_call(login("anna"), aid)
    text = rendered(at)
    for secret in SECRETS.values():
        assert secret not in text, secret
    assert OPERATOR_NAME not in text
    assert "[телефон]" in text and "[e-mail]" in text and "[номер карты]" in text
    assert "Приветствие" in text and "найдено в **0:00**" in text
    # a doubtful suggestion (budget, 0.6) is a question for the listener, with no one-click confirm
    assert "проверьте: возможно, в **" in text and "уверенность 60%" in text
    # so is an off-script flag right about half the time
    assert "Возможно, вне скрипта, проверьте: **" in text and "уверенность 55%" in text
    confirms = [b.key for b in at.button if (b.key or "").startswith(f"confirm_{aid}_")]
    assert f"confirm_{aid}_greeting" in confirms and f"confirm_{aid}_budget" not in confirms
    # speech the transcript has no words for is shown as a place to listen
    assert any("Речь без расшифровки" in w.value for w in at.warning)
    assert at.button(key=f"unheard_{aid}_0").label == "▶ 0:28–0:32 (неразборчиво)"  # and why it has no words

    # One-click confirm of the pipeline's suggestion, a manual mark and a comment.
    at.button(key=f"confirm_{aid}_greeting").click().run()
    at.radio(key=f"mark_{aid}_need").set_value("incorrect").run()
    at.text_input(key=f"comment_{aid}_need").input("не спросила про размеры").run()
    at.checkbox(key=f"urgent_{aid}").check().run()
    assert not at.exception

    # A fresh session (a reload in another tab) restores everything from the database.
    again = open_call(login("anna"), aid)
    assert again.radio(key=f"mark_{aid}_greeting").value == "correct"
    assert again.radio(key=f"mark_{aid}_need").value == "incorrect"
    assert again.radio(key=f"mark_{aid}_budget").value is None
    assert again.text_input(key=f"comment_{aid}_need").value == "не спросила про размеры"
    assert again.checkbox(key=f"urgent_{aid}").value is True


def test_submit_validates_then_locks(world):
    aid = world.assignment_ids["boris"][0]
    at = open_call(login("boris"), aid)
    at.radio(key=f"mark_{aid}_greeting").set_value("correct").run()
    at.button(key=f"submit_{aid}").click().run()
    assert at.error and "Не отмечены" in at.error[0].value
    for sid in STEP_IDS[1:]:
        at.radio(key=f"mark_{aid}_{sid}").set_value("not_in_script").run()
    at.button(key=f"submit_{aid}").click().run()
    assert not at.exception
    assert at.success and "отправлен" in at.success[0].value
    assert at.radio(key=f"mark_{aid}_greeting").disabled
    with session_scope(world.url) as s:
        r = s.scalar(select(Review).where(Review.assignment_id == aid))
        assert r.status == "submitted"
        assert s.scalar(select(StepMark.mark).where(StepMark.review_id == r.id, StepMark.step_id == "farewell")) == "not_in_script"


def test_the_audit_log_keeps_logins_opens_marks_and_submits_for_the_owner(world):
    """Who logged in (or failed to), opened, marked and submitted which call:
    in the database, on the owner's «Журнал» page and from `callreview audit`."""
    from typer.testing import CliRunner

    from pipeline import cli
    from pipeline.review import audit

    login("boris", "nope-nope")
    aid = world.assignment_ids["boris"][0]
    at = open_call(login("boris"), aid)
    for sid in STEP_IDS:
        at.radio(key=f"mark_{aid}_{sid}").set_value("correct").run()
    at.button(key=f"submit_{aid}").click().run()
    assert at.success
    with session_scope(world.url) as s:
        mine = audit.recent(s, user="Boris")[::-1]
    assert [e.action for e in mine] == ["login_failed", "login", "open"] + ["mark"] * len(STEP_IDS) + ["submit"]
    assert {e.assignment_id for e in mine[2:]} == {aid} and mine[3].detail == f"{STEP_IDS[0]}: correct"

    owner = login("owner")
    owner.switch_page("pages/owner_audit.py").run()
    assert not owner.exception and owner.title[0].value == "Журнал действий"
    shown = owner.dataframe[0].value
    assert {"вход", "неверный пароль", "открыл звонок", "оценка шага", "отправил отзыв"} <= set(shown["Действие"])
    owner.selectbox(key="audit_user").select("boris").run()
    assert set(owner.dataframe[0].value["Пользователь"]) == {"boris"} and len(owner.dataframe[0].value) == len(mine)

    out = CliRunner().invoke(cli.app, ["audit", "--user", "boris", "--action", "submit"])
    assert out.exit_code == 0 and out.output.count("submit") == 1 and f"assignment {aid}" in out.output


def test_listener_cannot_open_another_listeners_call(world):
    at = open_call(login("anna"), world.assignment_ids["boris"][0])
    assert at.error and "нет в вашей очереди" in at.error[0].value
    at = login("anna")
    at.query_params["call"] = "abc"
    at.switch_page("pages/review.py").run()  # a garbled link: a plain message, no traceback
    assert not at.exception and at.error[0].value == "Такого звонка нет. Выберите звонок в своей очереди."
