"""Streamlit entry of the review app: who is logged in decides which pages exist.

Listeners get only their queue and call page; owner pages are not even
registered for them, so no URL or ``switch_page`` can reach one.
"""

from pathlib import Path

import streamlit as st

from pipeline.review import assignments
from pipeline.storage.store import session_scope
from pipeline.vocabulary import Role
from review_app.labels import literal
from review_app.session import current_user, db_url, emit_cookie_script, emit_logout_script, log_out

HERE = Path(__file__).parent

st.set_page_config(page_title="Прослушивание звонков", page_icon="🎧", layout="wide")

# Report pages written alongside this app; listed only once their files exist.
REPORT_PAGES = [
    ("owner_script_improvement.py", "Улучшение скрипта", "📝"),
    ("owner_steps.py", "Шаги скрипта", "📊"),
    ("owner_operators.py", "Операторы", "🧑‍💼"),
    ("owner_listeners.py", "Качество слушателей", "🎧"),
    ("owner_sampling.py", "Выборка звонков", "🎲"),
    ("owner_outcomes.py", "Итоги сделок", "💰"),
]


def _pages(user):
    if user is None:
        return [st.Page("pages/login.py", title="Вход", icon="🔑", default=True)]
    if user.role == Role.LISTENER:
        return [
            st.Page("pages/queue.py", title="Мои звонки", icon="📋", default=True),
            st.Page("pages/review.py", title="Звонок", icon="🎧"),
        ]
    owner = [
        st.Page("pages/owner_urgent.py", title="Срочные сделки", icon="🚨", default=True),
        st.Page("pages/owner_upload.py", title="Загрузка записей", icon="⬆️"),
        st.Page("pages/owner_assign.py", title="Назначение звонков", icon="🗂️"),
        st.Page("pages/owner_progress.py", title="Прогресс слушателей", icon="📈"),
        st.Page("pages/owner_users.py", title="Пользователи", icon="👥"),
        st.Page("pages/owner_audit.py", title="Журнал", icon="📜"),
    ]
    reports = [
        st.Page(f"pages/{name}", title=title, icon=icon)
        for name, title, icon in REPORT_PAGES
        if (HERE / "pages" / name).is_file()
    ]
    return {"Управление": owner, "Отчёты": reports} if reports else {"Управление": owner}


user = current_user()
nav = st.navigation(_pages(user))

emit_logout_script()
if user is not None:
    emit_cookie_script()
    with st.sidebar:
        st.caption(f"Вы вошли как **{literal(user.name)}** ({'владелец' if user.is_owner else 'слушатель'})")
        if user.is_owner:
            with session_scope(db_url()) as s:
                n_urgent = assignments.count_open_urgent(s)
            if n_urgent:
                st.error(f"🚨 Срочных сделок: {n_urgent}")
        if st.button("Выйти", key="logout"):
            log_out()
            st.rerun()

nav.run()
