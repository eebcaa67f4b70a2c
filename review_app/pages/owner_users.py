"""Owner: listeners and owners, passwords, pay rate, access on/off."""

import streamlit as st

from pipeline.review import accounts
from pipeline.review.review import write_session
from pipeline.storage.store import session_scope
from pipeline.vocabulary import Role
from review_app import labels
from review_app.session import db_url, require_role

require_role(Role.OWNER)
st.title("Пользователи")

with session_scope(db_url()) as s:
    users = accounts.list_users(s)
st.dataframe(
    [{"Имя": u.name, "Роль": "владелец" if u.role == Role.OWNER else "слушатель", "Активен": u.active,
      "Ставка за отзыв": u.rate, "Неверных паролей подряд": u.failed_logins or 0,
      "Вход закрыт до": u.locked_until.strftime("%d.%m.%Y %H:%M UTC") if u.locked_until else ""} for u in users],
    hide_index=True,
)

with st.form("add_user", clear_on_submit=True):
    st.subheader("Добавить пользователя")
    c1, c2, c3, c4 = st.columns(4)
    name = c1.text_input("Имя")
    role = c2.selectbox("Роль", tuple(Role)[::-1], format_func={Role.OWNER: "владелец", Role.LISTENER: "слушатель"}.get)
    password = c3.text_input("Пароль", type="password")
    rate = c4.number_input("Ставка за отзыв", min_value=0.0, value=0.0, step=10.0)
    if st.form_submit_button("Добавить"):
        try:
            with write_session(db_url()) as s:
                accounts.add_user(s, name, role, password, rate=rate)
        except accounts.AccountError as exc:
            st.error(labels.error(exc))
        else:
            st.success(f"Пользователь {name} добавлен.")
            st.rerun()

st.subheader("Изменить")
by_name = {u.name: u for u in users}
if by_name:
    who = st.selectbox("Пользователь", list(by_name))
    target = by_name[who]
    c1, c2 = st.columns(2)
    with c1.form("password"):
        new = st.text_input("Новый пароль", type="password")
        if st.form_submit_button("Сменить пароль"):
            try:
                with write_session(db_url()) as s:
                    accounts.set_password(s, target.id, new)
                st.success("Пароль изменён; старые входы этого пользователя больше не действуют.")
            except accounts.AccountError as exc:
                st.error(labels.error(exc))
    if target.locked_until is not None and c2.button("Снять блокировку входа", key=f"unlock_{target.id}"):
        with write_session(db_url()) as s:
            accounts.unlock(s, target.id)
        st.rerun()
    label = "Отключить доступ" if target.active else "Включить доступ"
    if c2.button(label, key=f"toggle_{target.id}"):
        with write_session(db_url()) as s:
            accounts.set_active(s, target.id, not target.active)
        st.rerun()
