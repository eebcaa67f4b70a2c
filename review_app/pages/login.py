"""Login page: name and password, checked against argon2 hashes."""

import streamlit as st

from pipeline.review import accounts
from pipeline.storage.store import session_scope
from review_app.session import client_address, db_url, log_in

st.title("Вход")
with st.form("login"):
    name = st.text_input("Имя пользователя", key="login_name")
    password = st.text_input("Пароль", type="password", key="login_password")
    submitted = st.form_submit_button("Войти")

if submitted:
    try:
        with session_scope(db_url()) as s:
            user = accounts.authenticate(s, name, password, address=client_address())
    except accounts.LoginLocked:
        st.error("Слишком много неверных паролей подряд. Попробуйте позже или попросите владельца снять блокировку.")
        st.stop()
    if user is None:
        st.error("Неверное имя пользователя или пароль.")
    else:
        log_in(user)
        st.rerun()
