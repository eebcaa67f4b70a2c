"""Script steps: rates with 95% intervals, the drop-off funnel, versions side by side."""

import altair as alt
import pandas as pd
import streamlit as st

from pipeline.reports import reports, stats
from pipeline.vocabulary import Category
from review_app import labels
from review_app.labels import tip
from review_app.report_ui import owner_db, refresh_button, report_data, table

url = owner_db()
st.title("Шаги скрипта")
refresh_button()
data = report_data(url)

st.subheader("Все звонки: оценка машины и поправка по выборке")
machine = reports.machine_steps_report(data)
if not machine.empty:
    names = {"machine_found": "машина, все звонки", "listeners_done": "слушатели, прослушанные", "estimate": "поправленная оценка"}
    long = pd.DataFrame([{"step": r["step"], "figure": label, "share": r[fig], "low": r.get(f"{fig}_low"), "high": r.get(f"{fig}_high")}
                         for r in machine.to_dict("records") for fig, label in names.items()])
    base = alt.Chart(long).encode(
        y=alt.Y("step:N", sort=list(machine["step"]), title=None),
        color=alt.Color("figure:N", title=None, sort=list(names.values())),
        yOffset=alt.YOffset("figure:N", sort=list(names.values())),
    )
    st.altair_chart(
        base.mark_rule().encode(x=alt.X("low:Q", axis=alt.Axis(format="%"), title="доля звонков, где шаг выполнен"), x2="high:Q")
        + base.mark_point(filled=True).encode(x="share:Q", tooltip=[tip("step"), tip("figure"), tip("share:Q", ".0%")]),
        width="stretch",
    )
table(machine, "machine_steps",
      "«Найден машиной» — доля всех обработанных звонков, где машина нашла шаг (машинная оценка, не проверена). "
      "«Выполнен (слушатели)» — доля прослушанных звонков, где шаг выполнен (верно или неверно). "
      "«Поправленная оценка» — доля машины, поправленная по звонкам, выбранным для прослушивания случайно "
      "(prediction-powered inference); звонки, выбранные вручную или по приоритету, учтены как есть. "
      f"Интервал оценки — начиная с {stats.MIN_RANDOM_REVIEWS} случайно выбранных прослушанных звонков. "
      "«Ширина интервала к слушателям» — ширина её 95% интервала относительно интервала одних слушателей.")

st.subheader("Как выполняются шаги")
steps = reports.steps_report(data)
if not steps.empty:
    names = {Category.CORRECT: "верно", Category.INCORRECT: "неверно", Category.NOT_IN_SCRIPT: "нет в скрипте", Category.MISSING: "пропущен"}
    long = steps.melt(id_vars=["step"], value_vars=list(names), var_name="category", value_name="share")
    long["category"] = long["category"].map(names)
    st.altair_chart(
        alt.Chart(long).mark_bar().encode(
            x=alt.X("share:Q", axis=alt.Axis(format="%"), title="доля прослушанных звонков"),
            y=alt.Y("step:N", sort=list(steps["step"]), title=None),
            color=alt.Color("category:N", title=None, sort=list(names.values())),
            tooltip=[tip("step"), tip("category"), tip("share:Q", ".0%")],
        ),
        width="stretch",
    )
table(steps, "steps", "Доли по прослушанным звонкам; границы — 95% доверительный интервал Вилсона.")

st.subheader("Где теряются клиенты")
funnel = reports.funnel_report(data)
if not funnel.empty:
    st.caption(f"Последний пройденный шаг: {labels.value(funnel['scope'].iloc[0])}.")
    for (cl, v), part in funnel.groupby(["checklist", "version"]):
        st.altair_chart(
            alt.Chart(part).mark_bar().encode(
                x=alt.X("step:N", sort=list(part["step"]), title=f"{cl} v{v}"),
                y=alt.Y("reached:Q", title="дошли до шага"),
                tooltip=[tip("step"), tip("reached"), tip("stopped_here"), tip("reached_share:Q", ".0%")],
            ),
            width="stretch",
        )
table(funnel, "funnel")

st.subheader("Версии скрипта рядом")
table(reports.versions_report(data), "versions")
