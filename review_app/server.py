"""ASGI entry: the Streamlit review app plus its signed-audio and cookie routes.

Run with ``callreview serve`` (or ``streamlit run review_app/server.py``).
"""

import streamlit as st
from starlette.middleware import Middleware

from review_app.routes import ROUTES, SecurityHeaders

app = st.App("app.py", routes=ROUTES, middleware=[Middleware(SecurityHeaders)])

if __name__ == "__main__":
    app.run()
