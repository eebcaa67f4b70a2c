"""Review-app speed on a 30-minute call, measured in headless Chromium against
the real server: call page ready time, and the time from clicking a mark to
the saved, re-rendered step (target: under 300 ms).

    .venv/bin/python benchmarks/review_app_speed.py [--minutes 30] [--marks 9]

Prints a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from test_browser import ARGS, CHROMIUM, login, start_app  # noqa: E402
from test_review_data import SCRIPT_CALL, STEP_IDS, add_call, make_opus  # noqa: E402


def build(tmp: Path, minutes: float):
    from sqlalchemy import select

    from pipeline.review import accounts, assignments
    from pipeline.storage.store import Assignment, session_scope, upgrade

    url = f"sqlite:///{tmp / 'callreview.db'}"
    upgrade(url)
    data = tmp / "data"
    t0 = time.perf_counter()
    audio = make_opus(data / "audio" / "long.ogg", seconds=minutes * 60)
    print(f"made a {minutes:g}-minute Opus copy in {time.perf_counter() - t0:.1f}s ({audio.stat().st_size / 1e6:.1f} MB)")
    repeat = max(1, round(minutes * 60 / 4.0 / len(SCRIPT_CALL)))
    with session_scope(url) as s:
        accounts.add_user(s, "anna", "listener", "secret-pass")
        rid = add_call(s, "long.wav", listen_path=audio, repeat=repeat)
        uid = accounts.get_user(s, "anna").id
        assignments.assign(s, [rid], [uid])
        aid = s.scalar(select(Assignment.id).where(Assignment.listener_id == uid))
    return url, data, aid, repeat * len(SCRIPT_CALL)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--marks", type=int, default=len(STEP_IDS))
    ap.add_argument("--opens", type=int, default=5, help="page openings to time (the first creates the draft)")
    args = ap.parse_args()
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=60000)
    tmp = Path(tempfile.mkdtemp(prefix="callreview-bench-"))
    url, data, aid, n_utt = build(tmp, args.minutes)
    env = {"CALLREVIEW_DATABASE_URL": url, "CALLREVIEW_DATA_DIR": str(data), "CALLREVIEW_SECRET_KEY": "bench"}
    server, base = start_app(env, subprocess.DEVNULL)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60000)
            login(page, base, "anna")
            page.wait_for_timeout(500)

            ready = []
            for attempt in range(args.opens):  # first open creates the draft; later ones are reloads
                t0 = time.perf_counter()
                page.goto(f"{base}/review?call={aid}")
                expect(page.get_by_role("button", name="Отправить отзыв")).to_be_visible()
                expect(page.locator("audio")).to_have_count(1)
                expect(page.get_by_text("Расшифровка")).to_be_visible()
                # The page's script has run to its end (Streamlit's own flag on the app root).
                page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', state="attached")
                ready.append(time.perf_counter() - t0)

            marks = []
            for i in range(min(args.marks, len(STEP_IDS))):
                label = page.locator("label").filter(has_text="Выполнено неверно").nth(i)
                head = page.get_by_text(f"{i + 1}. ", exact=False).first
                t0 = time.perf_counter()
                label.click()
                # Saved and re-rendered: the step title gains its ✔️.
                page.wait_for_function(
                    "(n) => [...document.querySelectorAll('p strong')].some(e => e.innerText.startsWith(n + '. ')"
                    " && e.parentElement.innerText.includes('✔'))",
                    arg=i + 1,
                )
                marks.append(time.perf_counter() - t0)
                del head
            browser.close()
    finally:
        server.terminate()
        server.wait(10)

    cpu = platform.processor() or platform.machine()
    print()
    print(f"| measure ({args.minutes:g}-min call, {n_utt} utterances, {len(STEP_IDS)} steps) | median | min | max | n |")
    print("|---|---|---|---|---|")
    print(f"| call page ready (navigate -> player, steps, transcript shown) | {statistics.median(ready) * 1000:.0f} ms | "
          f"{min(ready) * 1000:.0f} ms | {max(ready) * 1000:.0f} ms | {len(ready)} |")
    print(f"| mark click -> saved and re-rendered | {statistics.median(marks) * 1000:.0f} ms | {min(marks) * 1000:.0f} ms | "
          f"{max(marks) * 1000:.0f} ms | {len(marks)} |")
    print(f"\n{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, headless Chromium")


if __name__ == "__main__":
    main()
