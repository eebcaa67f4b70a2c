"""Owner: the audit log, newest first: logins (and failed or refused ones),
logouts, and who opened, marked and submitted which call."""

import streamlit as st

from pipeline.review import accounts, audit
from pipeline.storage.store import session_scope
from pipeline.vocabulary import AuditAction, Role
from review_app.session import db_url, require_role

ACTIONS = {
    AuditAction.LOGIN: "вход", AuditAction.LOGIN_FAILED: "неверный пароль", AuditAction.LOGIN_REFUSED: "вход закрыт",
    AuditAction.LOGOUT: "выход", AuditAction.OPEN: "открыл звонок", AuditAction.MARK: "оценка шага",
    AuditAction.SUBMIT: "отправил отзыв",
}
ALL = "(все)"

require_role(Role.OWNER)
st.title("Журнал действий")

with session_scope(db_url()) as s:
    names = [u.name for u in accounts.list_users(s)]
c1, c2 = st.columns([1, 2])
who = c1.selectbox("Пользователь", [ALL, *names], key="audit_user")
actions = c2.multiselect("Действия", list(ACTIONS), format_func=ACTIONS.get, key="audit_actions",
                         placeholder="все действия")
with session_scope(db_url()) as s:
    entries = audit.recent(s, limit=1000, user=None if who == ALL else who, actions=actions or None)
if not entries:
    st.info("Записей пока нет.")
    st.stop()
st.caption(f"Последние {len(entries)} записей; время UTC.")
st.dataframe(
    [{"Время": e.at.strftime("%d.%m.%Y %H:%M:%S"), "Пользователь": e.user, "Действие": ACTIONS.get(e.action, e.action),
      "Назначение №": e.assignment_id, "Подробности": e.detail, "Адрес": e.address or "этот компьютер"}
     for e in entries],
    hide_index=True,
)
