"""A listener's queue: assigned calls in due order with their status."""

import streamlit as st

from pipeline.review import review
from pipeline.storage.store import session_scope
from review_app.session import db_url, fmt_time, require_role

STATUS = {"new": "🆕 новый", "in_progress": "✏️ в работе", "submitted": "✅ отправлен"}

user = require_role("listener")
st.title("Мои звонки")

with session_scope(db_url()) as s:
    queue = review.listener_queue(s, user.id)

if not queue:
    st.info("В вашей очереди пока нет звонков.")
    st.stop()

done = sum(q.status == "submitted" for q in queue)
st.progress(done / len(queue), text=f"Отправлено {done} из {len(queue)}")

for item in queue:
    cols = st.columns([1, 2, 2, 2, 2])
    cols[0].markdown(f"**№{item.number}**")
    cols[1].markdown(STATUS.get(item.status, item.status))
    cols[2].markdown(f"Длительность: {fmt_time(item.duration)}")
    cols[3].markdown(f"Отмечено шагов: {item.marked}" if item.status != "submitted" else "")
    label = "Открыть" if item.status == "submitted" else ("Продолжить" if item.status == "in_progress" else "Начать")
    if cols[4].button(label, key=f"open_{item.assignment_id}"):
        st.switch_page("pages/review.py", query_params={"call": str(item.assignment_id)})
