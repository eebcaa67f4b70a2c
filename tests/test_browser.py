"""One real run in headless Chromium: the served app (``review_app/server.py``)
with its signed audio route, a listener logging in, playing from a step,
marking every step, submitting; then the database is checked and a screenshot
saved to docs/review-app.png."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from pgserver import free_port
from sqlalchemy import select
from test_review_data import SECRETS, STEP_IDS, build_world

from pipeline.review import accounts
from pipeline.storage.store import Review, StepMark, session_scope
from review_app.routes import COOKIE

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]



def start_app(env_overrides: dict[str, str], log) -> tuple[subprocess.Popen, str]:
    """Serve the review app as `callreview serve` does, on a free port; wait until it answers."""
    from pipeline.cli.owner import serve_command

    port = free_port()
    proc = subprocess.Popen(serve_command("127.0.0.1", port), env=dict(os.environ, **env_overrides), cwd=REPO,
                            stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(base + "/_stcore/health", timeout=1)
            return proc, base
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.25)
    proc.terminate()
    raise RuntimeError(f"the review app did not start on {base}")


def login(page, base: str, name: str, password: str = "secret-pass") -> None:
    from playwright.sync_api import expect

    page.goto(base)
    page.get_by_label("Имя пользователя").fill(name)
    page.get_by_label("Пароль").fill(password)
    page.get_by_role("button", name="Войти").click()
    expect(page.get_by_role("heading", name="Мои звонки")).to_be_visible()


@pytest.fixture
def served(tmp_path):
    world = build_world(tmp_path, calls=2, listeners=1)
    env = {"CALLREVIEW_DATABASE_URL": world.url, "CALLREVIEW_DATA_DIR": str(world.data_dir),
           "CALLREVIEW_SECRET_KEY": "browser-test"}
    with open(tmp_path / "server.log", "w") as log:
        try:
            proc, base = start_app(env, log)
        except RuntimeError as exc:
            pytest.fail(f"{exc}: " + (tmp_path / "server.log").read_text())
        try:
            yield world, base
        finally:
            proc.terminate()
            proc.wait(10)


def test_listener_reviews_a_call_in_chromium(served):
    from playwright.sync_api import expect, sync_playwright

    world, base = served
    aid = world.assignment_ids["anna"][0]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(20000)
        login(page, base, "anna")

        # The login cookie keeps the listener in after a reload.
        page.wait_for_timeout(500)
        page.reload()
        expect(page.get_by_role("heading", name="Мои звонки")).to_be_visible()

        page.get_by_role("button", name="Начать").first.click()
        expect(page.get_by_role("heading", name="Звонок №1")).to_be_visible()
        body = page.inner_text("body")
        for secret in SECRETS.values():
            assert secret not in body

        # Play from the "budget" step (found at 0:08): the player restarts there.
        page.get_by_role("button", name="▶ 0:08").click()
        expect(page.get_by_text("Воспроизведение с 0:08")).to_be_visible()
        audio = page.locator("audio")
        src = audio.get_attribute("src")
        assert "/api/audio/" in src and SECRETS["file"] not in src
        page.wait_for_function("() => { const a = document.querySelector('audio'); return a && a.readyState >= 1 }")
        assert page.evaluate("document.querySelector('audio').currentTime") >= 7.5

        # The signed route honours Range requests and refuses tampered tokens.
        url = src.split("#")[0]
        req = urllib.request.Request(url, headers={"Range": "bytes=0-99"})
        with urllib.request.urlopen(req) as resp:
            assert resp.status == 206 and len(resp.read()) == 100
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(url[:-3] + "abc")
        assert err.value.code == 403

        # Mark every step, one click each, waiting for each save.
        for i in range(len(STEP_IDS)):
            page.locator("label").filter(has_text="Выполнено верно").nth(i).click()
            page.wait_for_timeout(250)
        page.get_by_role("button", name="Отправить отзыв").click()
        expect(page.get_by_text("Отзыв отправлен. Спасибо!")).to_be_visible()
        docs = REPO / "docs"
        docs.mkdir(exist_ok=True)
        page.screenshot(path=str(docs / "review-app.png"), full_page=False)
        browser.close()

    with session_scope(world.url) as s:
        r = s.scalar(select(Review).where(Review.assignment_id == aid))
        assert r.status == "submitted"
        marks = dict(s.execute(select(StepMark.step_id, StepMark.mark).where(StepMark.review_id == r.id)).all())
    assert marks == {sid: "correct" for sid in STEP_IDS}


def test_other_sites_can_neither_frame_the_app_nor_log_a_browser_in_or_out(served):
    """Clickjacking: every response forbids framing. Login CSRF: another site's
    page posts a token of the attacker's account to /api/session (a text/plain
    form needs no preflight); refused, as is a forced logout."""
    from playwright.sync_api import sync_playwright

    world, base = served
    # No other site may frame the app (clickjacking); every response says so.
    for path in ("/", "/_stcore/health"):
        with urllib.request.urlopen(base + path) as resp:
            assert resp.headers["X-Frame-Options"] == "DENY", path
            assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"], path
    for route in ("/api/session", "/api/logout"):
        req = urllib.request.Request(base + route, data=b"token", method="POST", headers={"Origin": "https://evil.example"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req)
        assert err.value.code == 403 and b"cross-site" in err.value.read()
    # The same POST from the app's own origin reaches the token check.
    req = urllib.request.Request(base + "/api/session", data=b"token", method="POST", headers={"Origin": base})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req)
    assert err.value.code == 403 and b"invalid login ticket" in err.value.read()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page()
        page.set_content(f'<form method="post" enctype="text/plain" action="{base}/api/session">'
                         '<input name="a" value="b"></form><script>document.forms[0].submit()</script>')
        page.wait_for_load_state()
        page.wait_for_function("() => document.body && document.body.innerText.length > 0")
        assert "cross-site request refused" in page.inner_text("body")
        assert not [c for c in page.context.cookies() if c["name"].startswith("callreview")]
        browser.close()


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


def test_logout_ends_the_login_for_every_copy_of_its_cookie(served):
    """The cookie is HttpOnly and never in the page or its websocket; a copy
    taken before logout is refused after it, as are the login's audio links;
    disabling an account refuses its audio at once."""
    from playwright.sync_api import expect, sync_playwright

    world, base = served
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        ctx = browser.new_context()
        page = ctx.new_page()
        page.set_default_timeout(20000)
        frames: list[bytes | str] = []

        def watch(ws) -> None:
            ws.on("framereceived", lambda frame: frames.append(frame))
            ws.on("framesent", lambda frame: frames.append(frame))

        page.on("websocket", watch)
        login(page, base, "anna")
        for _ in range(40):
            cookies = [c for c in ctx.cookies() if c["name"] == COOKIE]
            if cookies:
                break
            page.wait_for_timeout(250)
        [cookie] = cookies
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        page.get_by_role("button", name="Начать").first.click()
        expect(page.get_by_role("heading", name="Звонок №1")).to_be_visible()
        src = page.locator("audio").get_attribute("src").split("#")[0]
        assert _status(src) == 200
        value = cookie["value"]
        assert value not in page.content()
        assert frames and not [f for f in frames if value in (f if isinstance(f, str) else f.decode("latin-1"))]

        thief = browser.new_context()
        thief.add_cookies([cookie])
        stolen = thief.new_page()
        stolen.goto(base)
        expect(stolen.get_by_role("heading", name="Мои звонки")).to_be_visible()  # the copy works while the login lives

        page.get_by_role("button", name="Выйти").click()
        expect(page.get_by_label("Имя пользователя")).to_be_visible()
        again = thief.new_page()
        again.goto(base)
        expect(again.get_by_label("Имя пользователя")).to_be_visible()  # the copied cookie is refused now
        assert _status(src) == 403  # and so is the login's audio link

        login(page, base, "anna")
        page.get_by_role("button", name="Начать").first.click()
        src = page.locator("audio").get_attribute("src").split("#")[0]
        assert _status(src) == 200
        with session_scope(world.url) as s:
            accounts.set_active(s, accounts.get_user(s, "anna").id, False)
        assert _status(src) == 403
        browser.close()


def test_two_tabs_of_one_listener_lose_no_mark_silently(served):
    """One account, one call, two browser contexts: the tab writing from a stale
    view is told so beside the step and keeps nothing unseen; «Обновить» shows
    the stored value; once the other tab submits, a change is refused and the
    page says the review is closed instead of «autosaved»."""
    from playwright.sync_api import expect, sync_playwright

    world, base = served
    aid = world.assignment_ids["anna"][0]

    def stored() -> dict[str, str | None]:
        with session_scope(world.url) as s:
            r = s.scalar(select(Review).where(Review.assignment_id == aid))
            return {"status": r.status, **dict(s.execute(select(StepMark.step_id, StepMark.mark).where(StepMark.review_id == r.id)).all())}

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        tabs = []
        for _ in range(2):
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            page.set_default_timeout(20000)
            login(page, base, "anna")
            page.goto(f"{base}/review?call={aid}")
            expect(page.get_by_role("heading", name="Звонок №1")).to_be_visible()
            tabs.append(page)
        a, b = tabs

        def mark(page, step: int, label: str) -> None:
            page.locator('[data-testid="stRadio"]').nth(step).locator("label").filter(has_text=label).click()

        mark(a, 0, "Выполнено верно")
        expect(a.get_by_text("✔️").first).to_be_visible()
        mark(b, 0, "Выполнено неверно")
        expect(b.get_by_text("изменён в другой вкладке")).to_be_visible()
        assert stored()[STEP_IDS[0]] == "correct"
        b.get_by_role("button", name="Обновить").click()
        expect(b.get_by_text("изменён в другой вкладке")).to_have_count(0)
        expect(b.locator('[data-testid="stRadio"]').nth(0).locator("input").nth(0)).to_be_checked()  # the stored value

        for i in range(1, len(STEP_IDS)):
            mark(a, i, "Выполнено верно")
            a.wait_for_timeout(300)
        a.get_by_role("button", name="Отправить отзыв").click()
        expect(a.get_by_text("Отзыв отправлен. Спасибо!")).to_be_visible()

        mark(b, 1, "Не покрыто скриптом")
        expect(b.get_by_text("Отзыв уже отправлен и не может быть изменён")).to_be_visible()
        expect(b.get_by_text("отправлен, изменения закрыты")).to_be_visible()
        expect(b.get_by_text("сохраняется автоматически")).to_have_count(0)
        browser.close()
    assert stored() == {"status": "submitted", **{sid: "correct" for sid in STEP_IDS}}
