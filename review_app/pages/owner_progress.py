"""Owner: how far each listener is through their queue, the calls whose
transcript misses speech (listeners must hear those parts), and when the
database was last backed up."""

import datetime as dt

import streamlit as st

from pipeline.review import assignments
from pipeline.storage import backups
from pipeline.storage.ingest import low_coverage_calls
from pipeline.storage.store import session_scope, utcnow
from pipeline.vocabulary import Role
from review_app.labels import literal
from review_app.session import db_url, fmt_time, require_role

require_role(Role.OWNER)
st.title("Прогресс слушателей")

with session_scope(db_url()) as s:
    rows = assignments.listener_progress(s)
    low = low_coverage_calls(s)
    last = backups.last_backup(s)
if last is None:
    st.warning("Резервных копий базы ещё не было. Сделайте: `callreview backup data/backups/callreview-ДАТА.db` "
               "(и настройте ежедневный запуск, см. README).")
else:
    age = utcnow() - last.at
    show = st.warning if age > dt.timedelta(days=2) else st.caption
    show(f"Последняя резервная копия: {last.at:%d.%m.%Y %H:%M} UTC, отзывов в ней: {last.reviews} — {literal(last.path)}")
if low:
    st.warning(f"Звонков с речью без расшифровки: {len(low)}. Слушатели увидят эти места на странице звонка.")
    st.dataframe(
        [{"Звонок": c.name, "Расшифровано речи, %": round(100 * c.share), "Где слушать": ", ".join(f"{fmt_time(s)}–{fmt_time(e)}" for s, e, _ in c.unheard[:5])}
         for c in low],
        hide_index=True,
    )
if not rows:
    st.info("Слушателей пока нет: добавьте их на странице «Пользователи».")
    st.stop()
st.dataframe(
    [
        {
            "Слушатель": r.name + ("" if r.active else " (отключён)"),
            "Назначено": r.assigned,
            "Новые": r.new,
            "В работе": r.in_progress,
            "Отправлено": r.submitted,
            "Готово, %": round(100 * r.submitted / r.assigned) if r.assigned else 0,
            "Срочных открыто": r.urgent_open,
            "Последняя отправка": r.last_submitted_at.strftime("%d.%m.%Y %H:%M") if r.last_submitted_at else "—",
            "К оплате": r.earned,
        }
        for r in rows
    ],
    hide_index=True,
)
