"""Owner: put calls into listeners' queues, by hand or as a random/stratified sample."""

import streamlit as st

from pipeline.reports import sampling
from pipeline.review import accounts, assignments
from pipeline.review.review import write_session
from pipeline.storage.store import session_scope
from pipeline.vocabulary import Role
from review_app.session import db_url, fmt_time, require_role

require_role(Role.OWNER)
st.title("Назначение звонков")

with session_scope(db_url()) as s:
    listeners = [u for u in accounts.list_users(s, role=Role.LISTENER) if u.active]
    unassigned_only = st.toggle("Только ещё не назначенные звонки", value=True, key="assign_unassigned")
    recordings = assignments.reviewable_recordings(s, unassigned_only=unassigned_only)

if not listeners:
    st.warning("Нет активных слушателей: добавьте их на странице «Пользователи».")
    st.stop()
if not recordings:
    st.info("Нет обработанных звонков для назначения. Загрузите записи на странице «Загрузка записей».")
    st.stop()

names = {u.id: u.name for u in listeners}
chosen_listeners = st.multiselect("Слушатели (звонки делятся между ними по кругу)", list(names), format_func=names.get,
                                  key="assign_listeners")

by_hand, sample = st.tabs(["Вручную", "Выборка"])
with by_hand:
    labels = {r.id: f"{r.original_name} · {r.operator or 'оператор не указан'} · {fmt_time(r.duration)}" for r in recordings}
    picked = st.multiselect("Звонки", list(labels), format_func=labels.get, key="assign_pick")
    if st.button("Назначить выбранные", key="assign_hand", disabled=not (picked and chosen_listeners)):
        with write_session(db_url()) as s:
            res = assignments.assign(s, picked, chosen_listeners)
        st.success(f"Назначено {res.created}, пропущено (уже в очереди) {res.skipped}: {res.per_listener}")
with sample:
    n = st.number_input("Сколько звонков", min_value=1, max_value=len(recordings), value=min(10, len(recordings)), key="assign_n")
    stratify = st.checkbox("Поровну по операторам (стратифицированная выборка)", value=True, key="assign_strat")
    if st.button("Сделать выборку и назначить", key="assign_sample", disabled=not chosen_listeners):
        with write_session(db_url()) as s:
            ids = sampling.sample_recordings(s, int(n), stratify=stratify, unassigned_only=unassigned_only)
            res = assignments.assign(s, ids, chosen_listeners, drawn_at_random=True)
        st.success(f"Назначено {res.created}, пропущено {res.skipped}: {res.per_listener}")
