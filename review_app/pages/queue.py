"""A listener's queue: assigned calls in due order with their status."""

import streamlit as st

from pipeline.review import review
from pipeline.storage.store import session_scope
from pipeline.vocabulary import AssignmentStatus, Role
from review_app.session import db_url, fmt_time, require_role

STATUS = {AssignmentStatus.NEW: "🆕 новый", AssignmentStatus.IN_PROGRESS: "✏️ в работе", AssignmentStatus.SUBMITTED: "✅ отправлен"}

user = require_role(Role.LISTENER)
st.title("Мои звонки")

with session_scope(db_url()) as s:
    queue = review.listener_queue(s, user.id)

if not queue:
    st.info("В вашей очереди пока нет звонков.")
    st.stop()

done = sum(q.status == AssignmentStatus.SUBMITTED for q in queue)
st.progress(done / len(queue), text=f"Отправлено {done} из {len(queue)}")

for item in queue:
    cols = st.columns([1, 2, 2, 2, 2])
    cols[0].markdown(f"**№{item.number}**")
    cols[1].markdown(STATUS.get(item.status, item.status))
    cols[2].markdown(f"Длительность: {fmt_time(item.duration)}")
    cols[3].markdown(f"Отмечено шагов: {item.marked}" if item.status != AssignmentStatus.SUBMITTED else "")
    label = "Открыть" if item.status == AssignmentStatus.SUBMITTED else ("Продолжить" if item.status == AssignmentStatus.IN_PROGRESS else "Начать")
    if cols[4].button(label, key=f"open_{item.assignment_id}"):
        st.switch_page("pages/review.py", query_params={"call": str(item.assignment_id)})
