"""Owner: upload recordings; they are stored, then transcribed and aligned in
the background while the page shows progress."""

import datetime as dt
import re
from pathlib import Path

import streamlit as st

from pipeline.vocabulary import FileResult, Role
from review_app.jobs import JobBoard
from review_app.session import db_url, require_role, settings

REPO = Path(__file__).resolve().parents[2]
STATUS = {FileResult.DONE: "✅ готово", FileResult.SKIPPED: "↷ уже обработан", FileResult.DUPLICATE: "≡ дубликат",
          FileResult.FAILED: "⚠️ ошибка", FileResult.BUSY: "⏳ обрабатывается другим процессом"}


@st.cache_resource(show_spinner=False)
def board() -> JobBoard:
    return JobBoard()


require_role(Role.OWNER)
db_url()
cfg = settings()
st.title("Загрузка записей")

checklists = sorted((REPO / "checklists").glob("*.yaml")) + sorted(Path(cfg.data_dir, "checklists").glob("*.yaml"))
with st.form("upload", clear_on_submit=True):
    files = st.file_uploader("Записи звонков (WAV, MP3, OGG, M4A…)", accept_multiple_files=True, key="upload_files")
    c1, c2 = st.columns(2)
    checklist = c1.selectbox("Скрипт продаж", checklists, format_func=lambda p: p.stem) if checklists else None
    operator = c2.text_input("Оператор (если все записи одного оператора)")
    go = st.form_submit_button("Загрузить и обработать")

if go:
    if not files:
        st.error("Выберите хотя бы один файл.")
    else:
        folder = Path(cfg.data_dir) / "uploads" / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for f in files:
            safe = re.sub(r"[^\w.\-]+", "_", Path(f.name).name) or "recording"
            path = folder / safe
            path.write_bytes(f.getbuffer())
            paths.append(path)
        board().start(paths, cfg, checklist, operator.strip() or None)
        st.success(f"Файлов принято: {len(paths)}. Обработка идёт в фоне, страницу можно покинуть.")


@st.fragment(run_every=2)
def progress() -> None:
    jobs = board().recent()
    if not jobs:
        st.caption("Загрузок в этом сеансе сервера ещё не было.")
        return
    for job in jobs:
        with st.container(border=True):
            total = len(job.files)
            label = f"Загрузка {job.started_at:%H:%M:%S}: {job.done} из {total}"
            if not job.finished:
                st.progress(job.done / total if total else 0.0, text=label + (f" · сейчас: {job.current}" if job.current else ""))
            else:
                st.markdown(f"**{label}** — завершено")
            if job.error:
                st.error(f"Обработка остановилась: {job.error}")
            for r in job.results:
                line = f"{STATUS.get(r.status, r.status)} · {Path(r.path).name}"
                if r.message and r.status != FileResult.DONE:
                    line += f" — {r.message}"
                (st.warning if r.status == FileResult.FAILED else st.markdown)(line)


st.subheader("Обработка")
progress()
