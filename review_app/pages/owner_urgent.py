"""Owner: deals a listener flagged "urgent: save this deal", shown as soon as flagged."""

import streamlit as st

from pipeline.review import assignments
from pipeline.review.review import write_session
from pipeline.storage.store import session_scope
from pipeline.vocabulary import ReviewStatus, Role
from review_app.labels import literal
from review_app.session import db_url, require_role

require_role(Role.OWNER)
st.title("Срочные сделки")

show_all = st.toggle("Показать и обработанные", key="urgent_all")
with session_scope(db_url()) as s:
    flags = assignments.urgent_flags(s, include_handled=show_all)
if not flags:
    st.success("Срочных отметок нет.")
for f in flags:
    with st.container(border=True):
        when = f.flagged_at.strftime("%d.%m.%Y %H:%M") if f.flagged_at else ""
        st.markdown(f"**{literal(f.original_name)}** · оператор: {literal(f.operator or '—')} · "
                    f"отметил(а): {literal(f.listener)} · {when}")
        st.markdown(f"Причина: {literal(f.reason) if f.reason else '_не указана_'}")
        st.caption("отзыв отправлен" if f.review_status == ReviewStatus.SUBMITTED else "отзыв ещё в работе")
        if f.handled_at:
            st.caption(f"Обработано {f.handled_at.strftime('%d.%m.%Y %H:%M')}")
        elif st.button("Обработано", key=f"handled_{f.review_id}"):
            with write_session(db_url()) as s:
                assignments.mark_urgent_handled(s, f.review_id)
            st.rerun()
