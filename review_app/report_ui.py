"""Shared bits of the owner report pages: the database URL, the cached report
data, and a table with CSV/XLSX download buttons. The numbers come from
``pipeline.reports.reports``; nothing here computes them. On screen the
headers and values are Russian (``labels``); the downloads keep the reports'
English keys."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pipeline.reports import export
from pipeline.reports.data import ReportData, load
from pipeline.storage.store import session_scope
from pipeline.vocabulary import Role
from review_app import labels
from review_app.session import db_url, require_role

PERCENT_HINTS = ("correct", "incorrect", "not_in_script", "missing", "adherence", "conversion", "agreement", "percent",
                 "share", "margin_of_error", "lift", "found", "done", "estimate", "interval_vs")


def owner_db() -> str:
    """Stop the page for anyone but the owner; return the database URL. No
    fallback: a page that cannot check who is asking must not open."""
    require_role(Role.OWNER)
    return db_url()


@st.cache_data(ttl=60, show_spinner="Считаю отчёт…")
def report_data(url: str) -> ReportData:
    with session_scope(url) as s:
        return load(s)


def refresh_button() -> None:
    if st.button("Обновить данные", help="Отчёты кэшируются на минуту"):
        report_data.clear()
        st.rerun()


def _column_config(df: pd.DataFrame) -> dict:
    config = {}
    for col in df.columns:
        label = labels.header(col)
        if df[col].dtype.kind == "f" and any(h in col for h in PERCENT_HINTS) and "kappa" not in col:
            config[col] = st.column_config.NumberColumn(label, format="percent")
        elif df[col].dtype.kind == "f":
            config[col] = st.column_config.NumberColumn(label, format="%.2f")
        else:
            config[col] = st.column_config.Column(label)
    return config


def table(df: pd.DataFrame, name: str, caption: str | None = None) -> None:
    """Show a report table with CSV and XLSX downloads."""
    if caption:
        st.caption(caption)
    if df.empty:
        st.info("Пока нет данных для этой таблицы.")
        return
    st.dataframe(labels.for_screen(df), hide_index=True, width="stretch", column_config=_column_config(df))
    c1, c2, _ = st.columns([1, 1, 4])
    c1.download_button("CSV", export.table(df, "csv", name), f"{name}.csv", "text/csv", key=f"csv-{name}")
    c2.download_button("XLSX", export.table(df, "xlsx", name), f"{name}.xlsx",
                       "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", key=f"xlsx-{name}")
