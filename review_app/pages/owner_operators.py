"""Operator scorecards: adherence with its margin of error, steps, weekly trend, conversation metrics."""

import altair as alt
import streamlit as st

from pipeline.reports import reports
from review_app.labels import literal, tip
from review_app.report_ui import owner_db, refresh_button, report_data, table

url = owner_db()
st.title("Операторы")
refresh_button()
data = report_data(url)

card = reports.operators_report(data)
if not card.empty and card["adherence"].notna().any():
    plot = card.dropna(subset=["adherence"]).assign(
        low=lambda d: (d["adherence"] - d["margin_of_error"]).clip(lower=0),
        high=lambda d: (d["adherence"] + d["margin_of_error"]).clip(upper=1),
    )
    base = alt.Chart(plot).encode(y=alt.Y("operator:N", title=None))
    st.altair_chart(
        base.mark_bar().encode(x=alt.X("adherence:Q", axis=alt.Axis(format="%"), title="выполнение скрипта"),
                               tooltip=[tip("operator"), tip("reviewed_calls"), tip("adherence:Q", ".0%"),
                                        tip("margin_of_error:Q", ".0%")])
        + base.mark_errorbar().encode(x="low:Q", x2="high:Q"),
        width="stretch",
    )
table(card, "operators", "Выполнение — средняя доля шагов, сделанных верно, по прослушанным звонкам; "
      "погрешность — 95%, с учётом числа прослушанных из всех звонков оператора. "
      "Машинные оценки по всем звонкам, не проверенные слушателями: «выполнение (машина)» — доля шагов, найденных "
      "машиной; «фраз вне скрипта на звонок (машина)».")

st.subheader("По шагам")
table(reports.operator_steps_report(data), "operator_steps",
      "«Найден машиной» — доля всех звонков оператора, где машина нашла шаг (машинная оценка); "
      "«верно» — доля прослушанных, где шаг выполнен верно.")

st.subheader("По неделям")
trend = reports.operator_trend_report(data)
if not trend.empty:
    st.altair_chart(
        alt.Chart(trend).mark_line(point=True).encode(
            x=alt.X("period:N", title="неделя"), y=alt.Y("adherence:Q", axis=alt.Axis(format="%"), title="выполнение"),
            color="operator:N", tooltip=[tip("operator"), tip("period"), tip("reviewed_calls"), tip("adherence:Q", ".0%")],
        ),
        width="stretch",
    )
table(trend, "operator_trend")

st.subheader("Чаты")
table(reports.chats_report(data), "chats",
      "Без ответа — посетитель написал, ответа не было. Время ответа — сколько посетитель ждал, в секундах, "
      "по отвеченным чатам; оценка — оценка посетителя из выгрузки чатов.")
worst = reports.worst_chats_report(data)
table(worst, "worst_chats", "Чаты с худшей оценкой и их проверка слушателями.")
for chat in worst.itertuples():
    with st.expander(f"{literal(chat.file)} · {literal(chat.operator)} · оценка {chat.rating:g}"
                     + (" · без ответа" if chat.missed else "")):
        review = reports.call_review(data, chat.recording_id)
        if review.empty:
            st.caption("Этот чат ещё не проверен слушателем: назначьте его на странице «Назначение звонков».")
        else:
            table(review, f"chat_review_{chat.recording_id}")

st.subheader("Разговор")
table(reports.conversation_report(data), "conversation",
      "Средние по звонкам: секунды речи, доля тишины, перебивания (речь одновременно на двух каналах дольше 0,3 с), "
      "задержка ответа оператора после реплики клиента; для чатов — время первого и среднего ответа, в секундах.")
with st.expander("По каждому звонку"):
    table(reports.conversation_calls_report(data), "conversation_calls")
