"""The README's demo as a new owner meets it: ``scripts/demo-data.sh`` (what
``scripts/demo.sh`` runs before serving) processes the demo calls with real
Whisper, adds the demo CRM export and demo reviews; then every owner page is
opened in headless Chromium and must show numbers, never "no data"."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import func, select
from test_browser import ARGS, CHROMIUM, start_app

from pipeline.reports import reports
from pipeline.reports.data import load
from pipeline.storage.store import Assignment, Review, User, session_scope

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parent.parent
EMPTY = "Пока нет данных для этой таблицы."
# The owner's pages the issue names (urgent deals, progress and every report page).
PAGES = ["owner_urgent", "owner_progress", "owner_script_improvement", "owner_steps", "owner_operators",
         "owner_listeners", "owner_outcomes"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("demo")
    env = {**os.environ, "CALLREVIEW_DATA_DIR": str(data_dir)}
    env.pop("CALLREVIEW_DATABASE_URL", None)
    env.pop("DATABASE_URL", None)
    run = subprocess.run(["bash", "scripts/demo-data.sh"], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return data_dir, f"sqlite:///{data_dir / 'callreview.db'}", run.stdout


def test_demo_fills_every_report_and_leaves_the_listener_calls_to_hear(demo):
    data_dir, url, out = demo
    assert "6 done" in out and "4 done" in out and "demo reviews submitted: 6" in out  # 6 calls, 4 chats
    with session_scope(url) as s:
        data = load(s)
        empty = [kind for kind in reports.REPORTS if reports.build(kind, s, data).empty]
        listener = s.scalar(select(User.id).where(User.name == "listener"))
        queued = s.scalar(select(func.count(Assignment.id)).where(Assignment.listener_id == listener))
        submitted = s.scalar(select(func.count(Review.id)).join(Assignment, Assignment.id == Review.assignment_id)
                             .where(Assignment.listener_id == listener, Review.status == "submitted"))
    assert empty == []
    assert (queued, submitted) == (10, 1)
    assert sum(c.outcome is not None for c in data.calls.values()) == 6
    chats = {c.name: (c.rating, c.answered) for c in data.calls.values() if c.kind == "chat"}
    assert chats["chat_03_missed.csv"] == (1.0, False) and chats["chat_01_kettle.csv"] == (5.0, True)
    # A rerun of the demo's data step adds nothing.
    env = {**os.environ, "CALLREVIEW_DATA_DIR": str(data_dir)}
    again = subprocess.run([".venv/bin/callreview", "demo-reviews", "data/demo"], cwd=REPO, env=env, capture_output=True,
                           text=True, timeout=300)
    assert "demo reviews submitted: 0" in again.stdout, again.stdout + again.stderr


def test_every_owner_page_of_the_demo_shows_data_in_chromium(demo, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    data_dir, url, _ = demo
    # The demo's passwords are generated and kept for the owner only.
    path = data_dir / "demo-logins.txt"
    assert path.stat().st_mode & 0o077 == 0
    logins = dict(line.split() for line in path.read_text().splitlines())
    assert set(logins) == {"owner", "listener"} and all(len(p) >= 10 for p in logins.values())
    # A listener writes Markdown into the urgent reason: the owner's browser must show it as typed.
    with session_scope(url) as s:
        review = s.scalar(select(Review).where(Review.urgent.is_(True)))
        review.urgent_reason = "![x](https://evil.example/p.png) [оплатите тут](https://evil.example)"
    env = {"CALLREVIEW_DATABASE_URL": url, "CALLREVIEW_DATA_DIR": str(data_dir), "CALLREVIEW_SECRET_KEY": "demo-test"}
    with open(tmp_path / "server.log", "w") as log:
        proc, base = start_app(env, log)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.set_default_timeout(60000)
                page.goto(base)
                page.get_by_label("Имя пользователя").fill("owner")
                page.get_by_label("Пароль").fill(logins["owner"])
                page.get_by_role("button", name="Войти").click()
                expect(page.get_by_role("heading", name="Срочные сделки")).to_be_visible()
                seen = {}
                for name in PAGES:
                    page.goto(f"{base}/{name}")
                    page.wait_for_selector("h1")
                    # The page's script has run to its end: every table is on the page.
                    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', state="attached")
                    body = page.inner_text("body")
                    seen[name] = (body.count(EMPTY), page.locator('[data-testid="stException"]').count() > 0)
                    if name == "owner_urgent":
                        assert "![x](https://evil.example/p.png)" in body.replace("\u200b", "")
                        assert page.locator('img[src*="evil"], a[href*="evil"]').count() == 0
                browser.close()
        finally:
            proc.terminate()
            proc.wait(10)
    assert seen == {name: (0, False) for name in PAGES}, seen
