"""Many listeners marking at once: N listeners, each in its own context of one
headless Chromium, log in and mark every step of two calls (0.2-0.6 s between
clicks) against a running review app, on SQLite and on PostgreSQL.

Reports marks attempted, stored and lost, error messages shown, p50/p95 time
from a click to the step's ✔️ (stored and re-rendered), and the server's CPU
seconds and peak memory. The server is pinned to core 0 and the browsers to
the other cores, so the server's share is its own.

    .venv/bin/python benchmarks/review_load.py [--listeners 1 5 10 20] [--backends sqlite postgresql]

Prints a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from pgserver import new_pg_database, running_pg_server  # noqa: E402
from test_browser import ARGS, CHROMIUM, start_app  # noqa: E402
from test_review_data import STEP_IDS, add_call  # noqa: E402

from review_app.routes import COOKIE  # noqa: E402

CALLS_EACH = 2
PASSWORD = "secret-pass"
CHECKED = ("(n) => [...document.querySelectorAll('p strong')].some(e => e.innerText.startsWith(n + '. ')"
           " && e.parentElement.innerText.includes('✔'))")


def build(url: str, n: int) -> dict[str, list[int]]:
    """N listeners with two calls each; their assignment ids by name."""
    from sqlalchemy import select

    from pipeline.review import accounts, assignments
    from pipeline.storage.store import Assignment, session_scope, upgrade

    upgrade(url)
    with session_scope(url) as s:
        accounts.add_user(s, "owner", "owner", "boss-secret-pass")
        calls = [add_call(s, f"call_{i}.wav") for i in range(CALLS_EACH)]
        out = {}
        for k in range(n):
            user = accounts.add_user(s, f"listener{k:02d}", "listener", PASSWORD)
            assignments.assign(s, calls, [user.id])
            out[user.name] = list(s.scalars(select(Assignment.id).where(Assignment.listener_id == user.id).order_by(Assignment.position)))
    return out


def stored_marks(url: str) -> set[tuple[int, str]]:
    """(assignment, step) of every stored "correct" mark."""
    from sqlalchemy import select

    from pipeline.storage.store import Review, StepMark, session_scope

    with session_scope(url) as s:
        return set(s.execute(select(Review.assignment_id, StepMark.step_id).join(Review, Review.id == StepMark.review_id)
                             .where(StepMark.mark == "correct")).all())


async def listener(browser, base: str, name: str, aids: list[int], latencies: list[float], errors: list[str],
                   confirmed: set[tuple[int, str]], seed: int) -> None:
    from playwright.async_api import expect

    rng = random.Random(seed)
    ctx = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await ctx.new_page()
    page.set_default_timeout(180_000)
    await page.goto(base)
    await page.get_by_label("Имя пользователя").fill(name)
    await page.get_by_label("Пароль").fill(PASSWORD)
    await page.get_by_role("button", name="Войти").click()
    await expect(page.get_by_role("heading", name="Мои звонки")).to_be_visible(timeout=180_000)
    while not [c for c in await ctx.cookies() if c["name"] == COOKIE]:  # set by the page's fetch, just after login
        await asyncio.sleep(0.1)
    for aid in aids:
        await page.goto(f"{base}/review?call={aid}")
        await expect(page.get_by_role("button", name="Отправить отзыв")).to_be_visible(timeout=180_000)
        # the page's script has finished (Streamlit's own flag), as a listener sees a page that stopped loading
        await page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', state="attached")
        for i in range(len(STEP_IDS)):
            await asyncio.sleep(rng.uniform(0.2, 0.6))
            t0 = time.perf_counter()
            await page.locator('[data-testid="stRadio"]').nth(i).locator("label").filter(has_text="Выполнено верно").click()
            try:
                await page.wait_for_function(CHECKED, arg=i + 1, timeout=60_000)
                latencies.append(time.perf_counter() - t0)
                confirmed.add((aid, STEP_IDS[i]))
            except Exception as exc:  # noqa: BLE001 (a mark that never showed as saved is counted, not fatal)
                errors.append(f"{name} call {aid} step {i + 1}: no ✔ ({type(exc).__name__})")
        shown = page.locator('[data-testid="stAlertContentError"], [data-testid="stException"]')
        errors += [f"{name} call {aid}: {t}" for t in await shown.all_inner_texts()]
    await ctx.close()


class Watch:
    """CPU seconds and peak RSS of the server process and its children."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _tree(self) -> list[psutil.Process]:
        return [self.proc, *self.proc.children(recursive=True)]

    def cpu(self) -> float:
        return sum(p.cpu_times().user + p.cpu_times().system for p in self._tree())

    def _poll(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(psutil.Error):
                self.peak = max(self.peak, sum(p.memory_info().rss for p in self._tree()))
            time.sleep(0.2)

    def __enter__(self) -> Watch:
        self.cpu0 = self.cpu()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.cpu_s = self.cpu() - self.cpu0
        self._stop.set()
        self._thread.join()


async def drive(base: str, users: dict[str, list[int]]) -> tuple[list[float], list[str], set[tuple[int, str]], float]:
    from playwright.async_api import async_playwright

    latencies: list[float] = []
    errors: list[str] = []
    confirmed: set[tuple[int, str]] = set()
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        t0 = time.perf_counter()
        await asyncio.gather(*(listener(browser, base, name, aids, latencies, errors, confirmed, k)
                               for k, (name, aids) in enumerate(users.items())))
        wall = time.perf_counter() - t0
        await browser.close()
    return latencies, errors, confirmed, wall


def run(url: str, n: int, tmp: Path) -> dict:
    users = build(url, n)
    env = {"CALLREVIEW_DATABASE_URL": url, "CALLREVIEW_DATA_DIR": str(tmp / "data"), "CALLREVIEW_SECRET_KEY": "bench"}
    cores = sorted(os.sched_getaffinity(0))
    log = open(tmp / "server.log", "w")  # noqa: SIM115 (closed below)
    server, base = start_app(env, log)
    try:
        for p in [psutil.Process(server.pid), *psutil.Process(server.pid).children(recursive=True)]:
            p.cpu_affinity(cores[:1])
        os.sched_setaffinity(0, cores[1:] or cores)  # the browsers (started below) inherit this
        with Watch(server.pid) as watch:
            latencies, errors, confirmed, wall = asyncio.run(drive(base, users))
    finally:
        os.sched_setaffinity(0, cores)
        server.terminate()
        server.wait(10)
        log.close()
    attempted = n * CALLS_EACH * len(STEP_IDS)
    stored = stored_marks(url)
    q = statistics.quantiles(latencies, n=20) if len(latencies) > 1 else [latencies[0]] * 19
    # lost: the page showed ✔ but the database lacks the mark (silent); unconfirmed: no ✔ within 60 s (visible)
    return {"n": n, "attempted": attempted, "stored": len(stored), "lost": len(confirmed - stored),
            "unconfirmed": attempted - len(confirmed), "errors": errors,
            "p50": statistics.median(latencies), "p95": q[18], "cpu_s": watch.cpu_s, "peak_mb": watch.peak / 2**20,
            "wall": wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listeners", type=int, nargs="+", default=[1, 5, 10, 20])
    ap.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    args = ap.parse_args()
    rows = []
    with contextlib.ExitStack() as stack:
        for backend in args.backends:
            server_url = stack.enter_context(running_pg_server()) if backend == "postgresql" else None
            for n in args.listeners:
                tmp = Path(tempfile.mkdtemp(prefix="callreview-load-"))
                url = new_pg_database(server_url) if server_url else f"sqlite:///{tmp / 'callreview.db'}"
                r = run(url, n, tmp)
                rows.append((backend, r))
                print(f"{backend} N={n}: stored {r['stored']}/{r['attempted']}, lost {r['lost']}, "
                      f"unconfirmed {r['unconfirmed']}, errors {len(r['errors'])}, "
                      f"p50 {r['p50'] * 1000:.0f} ms, p95 {r['p95'] * 1000:.0f} ms, server CPU {r['cpu_s']:.1f} s, "
                      f"peak {r['peak_mb']:.0f} MB, {r['wall']:.0f} s", flush=True)
                for e in r["errors"][:5]:
                    print("   ", e)
    print()
    print("| database | listeners | marks attempted | stored | lost (✔ shown, not stored) | no ✔ in 60 s | errors shown | p50 mark | "
          "p95 mark | server CPU | CPU per mark | server peak RSS | wall |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for backend, r in rows:
        print(f"| {backend} | {r['n']} | {r['attempted']} | {r['stored']} | {r['lost']} | {r['unconfirmed']} | {len(r['errors'])} | "
              f"{r['p50'] * 1000:.0f} ms | {r['p95'] * 1000:.0f} ms | {r['cpu_s']:.1f} s | {r['cpu_s'] / r['attempted'] * 1000:.0f} ms | "
              f"{r['peak_mb']:.0f} MB | {r['wall']:.0f} s |")
    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          "server pinned to core 0, headless Chromium on the others")


if __name__ == "__main__":
    main()
