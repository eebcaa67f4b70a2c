"""Listener quality: agreement with gold calls, peers and the aligner; calibration; throughput and pay."""

import altair as alt
import streamlit as st

from pipeline.reports import reports
from review_app.labels import tip
from review_app.report_ui import owner_db, refresh_button, report_data, table

url = owner_db()
st.title("Качество слушателей")
refresh_button()
data = report_data(url)

overall = reports.overall_agreement(data)
c1, c2, c3 = st.columns(3)
c1.metric("Совпадение между слушателями", "—" if overall.percent is None else f"{overall.percent:.0%}")
c2.metric("Альфа Криппендорфа", "—" if overall.alpha is None else f"{overall.alpha:.2f}")
c3.metric("Общих шагов", overall.units)

listeners = reports.listeners_report(data)
if not listeners.empty:
    long = listeners.melt(id_vars=["listener"], value_vars=["gold_kappa", "peer_kappa"], var_name="vs", value_name="kappa")
    long = long.dropna(subset=["kappa"])
    long["vs"] = long["vs"].map({"gold_kappa": "с эталоном", "peer_kappa": "с коллегами"})
    if not long.empty:
        st.altair_chart(
            alt.Chart(long).mark_bar().encode(
                x=alt.X("kappa:Q", scale=alt.Scale(domain=[-1, 1]), title="каппа Коэна"), y=alt.Y("listener:N", title=None),
                color=alt.Color("vs:N", title=None), yOffset="vs:N", tooltip=[tip("listener"), tip("vs"), tip("kappa:Q", ".2f")],
            ),
            width="stretch",
        )
table(listeners, "listeners", "«С эталоном» — с отзывом владельца; «с коллегами» — с другими слушателями того же звонка; "
      "«с машиной» — с автоматической разметкой (был ли шаг). Каппа пуста, когда все ответы одинаковы.")

st.subheader("Согласие по шагам")
table(reports.agreement_report(data), "agreement")

st.subheader("Расхождения (для калибровки)")
table(reports.disagreements_report(data), "disagreements")

st.subheader("Выработка и оплата")
period = st.segmented_control("Период", ["week", "month"], default="week",
                              format_func={"week": "неделя", "month": "месяц"}.get) or "week"
tp = reports.throughput_report(data, period)
if not tp.empty:
    st.altair_chart(alt.Chart(tp).mark_bar().encode(x=alt.X("period:N", title=None), y="reviews:Q", color="listener:N",
                                                   tooltip=[tip("listener"), tip("period"), tip("reviews"), tip("pay")]),
                    width="stretch")
table(tp, "throughput")
