"""Owner: upload recordings. The page only stores and registers them (hash and
probe); the worker beside the server (`callreview process --watch`, started by
`callreview serve`) transcribes and aligns them, and the page shows their
progress from the database."""

import datetime as dt
from pathlib import Path

import streamlit as st

from pipeline.errors import CallreviewError
from pipeline.script.checklist import load_checklist
from pipeline.storage.ingest import recent_uploads, register_uploads, save_uploads
from pipeline.storage.runner import worker_alive
from pipeline.vocabulary import FileResult, RecordingStatus, Role
from review_app import labels
from review_app.session import db_url, require_role, settings

REPO = Path(__file__).resolve().parents[2]
STATUS = {RecordingStatus.NEW: "🕓 ждёт обработки", RecordingStatus.PROCESSING: "⏳ обрабатывается",
          RecordingStatus.TRANSCRIBED: "📝 расшифрован", RecordingStatus.ALIGNED: "✅ готово",
          RecordingStatus.FAILED: "⚠️ ошибка"}

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
        paths = save_uploads(folder, ((f.name, f.getbuffer()) for f in files))
        try:
            script = load_checklist(checklist) if checklist else None
            with st.spinner("Регистрирую записи…"):
                results = register_uploads(cfg, paths, script, operator.strip() or None)
        except CallreviewError as exc:
            st.error(labels.error(exc))
        else:
            accepted = sum(r.status == FileResult.REGISTERED for r in results)
            st.success(f"Записей принято: {accepted} из {len(results)}. Обработка идёт в фоне, страницу можно покинуть.")
            for r in results:
                if r.status != FileResult.REGISTERED:
                    name = Path(r.path).name
                    st.warning(labels.error(r.message if r.message.startswith(name) else f"{name}: {r.message}"))


@st.fragment(run_every=2)
def progress() -> None:
    if not worker_alive(cfg):
        st.warning("Обработчик записей не запущен: загруженные записи ждут. Запустите `callreview process --watch` "
                   "(его запускает `callreview serve`).")
    uploads = recent_uploads(cfg)
    if not uploads:
        st.caption("Загруженных записей пока нет.")
        return
    counts = {s: sum(u.status == s for u in uploads) for s in STATUS}
    st.markdown(" · ".join(f"{STATUS[s]}: **{n}**" for s, n in counts.items() if n))
    for u in uploads:
        line = f"{STATUS.get(u.status, u.status)} · {u.name} · {u.created_at:%d.%m %H:%M}"
        (st.warning if u.status == RecordingStatus.FAILED else st.markdown)(line + (f" — {u.error}" if u.error else ""))


st.subheader("Обработка")
progress()
