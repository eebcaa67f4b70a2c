"""Sales outcomes: import a CRM CSV with a column mapping; conversion and order value by step done or not."""

import altair as alt
import streamlit as st

from pipeline.errors import CallreviewError
from pipeline.reports import outcomes, reports
from pipeline.storage.store import session_scope
from review_app import labels
from review_app.labels import tip
from review_app.report_ui import owner_db, refresh_button, report_data, table

url = owner_db()
st.title("Итоги сделок")

with st.expander("Загрузить выгрузку из CRM (CSV)", expanded=False):
    up = st.file_uploader("Файл CSV", type=["csv", "txt"])
    if up is not None:
        try:
            text = outcomes.decode(up.getvalue(), up.name)
        except CallreviewError as exc:
            st.error(labels.error(exc))
            st.stop()
        cols = outcomes.csv_columns(text)
        none = "—"
        with st.form("mapping"):
            c1, c2, c3 = st.columns(3)
            call = c1.selectbox("Звонок (id или имя файла)", cols)
            outcome = c2.selectbox("Итог (заказ / нет / отмена)", cols, index=min(1, len(cols) - 1))
            amount = c3.selectbox("Сумма заказа", [none, *cols])
            c4, c5 = st.columns(2)
            operator = c4.selectbox("Оператор", [none, *cols])
            time = c5.selectbox("Время", [none, *cols])
            words = st.text_input("Свои слова CRM для итогов (через запятую, например «Сделка=order, Слив=no_order»)")
            go = st.form_submit_button("Импортировать", type="primary")
        if go:
            values = {}
            for pair in filter(None, (w.strip() for w in words.split(","))):
                raw, _, canon = pair.partition("=")
                values[raw.strip()] = canon.strip()
            mapping = outcomes.ColumnMapping(call=call, outcome=outcome, operator=None if operator == none else operator,
                                             time=None if time == none else time, amount=None if amount == none else amount,
                                             values=values)
            try:
                with session_scope(url) as s:
                    res = outcomes.import_outcomes(s, outcomes.read_crm_csv(text, mapping, up.name), up.name)
            except CallreviewError as exc:
                st.error(labels.error(exc))
                st.stop()
            report_data.clear()
            st.success(f"Строк: {res.rows}; новых {res.created}, обновлено {res.updated}; найдено звонков: {res.matched}.")
            if res.unmatched:
                st.warning("Не найдены записи для: " + ", ".join(res.unmatched[:20]))

refresh_button()
data = report_data(url)
df = reports.outcomes_report(data)
if not df.empty:
    long = df.melt(id_vars=["step"], value_vars=["done_conversion", "not_done_conversion"], var_name="group",
                   value_name="conversion").dropna()
    long["group"] = long["group"].map({"done_conversion": "шаг выполнен", "not_done_conversion": "шаг не выполнен"})
    st.altair_chart(
        alt.Chart(long).mark_bar().encode(
            x=alt.X("conversion:Q", axis=alt.Axis(format="%"), title="конверсия в заказ"),
            y=alt.Y("step:N", sort=list(df["step"]), title=None), color=alt.Color("group:N", title=None),
            yOffset="group:N", tooltip=[tip("step"), tip("group"), tip("conversion:Q", ".0%")],
        ),
        width="stretch",
    )
table(df, "outcomes", "Конверсия — доля звонков с заказом (95% интервал Вилсона); средний заказ — средняя сумма заказа. "
      "Для прослушанных звонков — оценка слушателя, для остальных — автоматическая разметка.")
st.subheader("По операторам")
table(reports.operators_report(data)[["operator", "calls", "calls_with_outcome", "conversion", "avg_order_value", "adherence"]],
      "operators_sales")
