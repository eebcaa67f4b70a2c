"""Sampling: how many calls to review, a sample stratified by operator with
priority rules, and assignment to listeners with overlap and hidden gold calls."""

from collections import Counter

import pandas as pd
import streamlit as st

from pipeline.errors import CallreviewError
from pipeline.reports import reports, sampling
from pipeline.storage.store import session_scope
from review_app import labels
from review_app.report_ui import owner_db, report_data, table

url = owner_db()
st.title("Выборка звонков")

with session_scope(url) as s:
    candidates = sampling.load_candidates(s)
    listeners = sampling.active_listener_names(s)
    n_gold = len(sampling.gold_recording_ids(s))

st.metric("Неназначенных звонков", len(candidates))
c1, c2 = st.columns(2)
confidence = c1.select_slider("Уверенность", [0.9, 0.95, 0.99], value=0.95, format_func=lambda v: f"{v:.0%}")
margin = c2.select_slider("Погрешность ±", [0.03, 0.05, 0.07, 0.1], value=0.05, format_func=lambda v: f"{v:.0%}")
needed = sampling.sample_size(len(candidates), confidence, margin)
st.success(f"Нужно прослушать **{needed}** из {len(candidates)} звонков (формула Кохрана с поправкой на конечную совокупность).")
with st.expander("Таблица размеров выборки"):
    table(reports.sample_size_report(len(candidates)), "sample_size")

with st.form("sample"):
    n = st.number_input("Сколько звонков взять", min_value=0, max_value=max(len(candidates), 0), value=min(needed, len(candidates)))
    st.markdown("**Приоритет** (до заданной доли квоты каждого оператора, остальное — случайно)")
    p1, p2, p3, p4 = st.columns(4)
    low = p1.slider("Авто-выполнение ниже", 0.0, 1.0, 0.6, 0.05)
    short = p2.number_input("Звонок короче, с", 0, 3600, 60)
    no_order = p3.checkbox("Без заказа", True)
    share = p4.slider("Доля приоритетных", 0.0, 1.0, 0.5, 0.1)
    chosen = st.multiselect("Слушатели", listeners, default=listeners)
    o1, o2 = st.columns(2)
    overlap = o1.slider("Доля звонков двум слушателям (для проверки согласия)", 0.0, 0.5, 0.1, 0.05)
    gold = o2.number_input(f"Эталонных звонков каждому (есть {n_gold})", 0, 20, min(2, n_gold))
    seed = st.number_input("Число для повторяемой выборки", 0, 10**6, 0, help="То же число — та же выборка.")
    preview = st.form_submit_button("Показать выборку")
    commit = st.form_submit_button("Назначить", type="primary")

if preview or commit:
    rules = sampling.PriorityRules(low, no_order, float(short), share)
    try:
        with session_scope(url) as s:
            res = sampling.sample_and_assign(s, int(n), confidence, margin, rules, chosen, overlap, int(gold), int(seed),
                                             dry_run=not commit)
    except CallreviewError as exc:
        st.error(labels.error(exc))
        st.stop()
    names = {c.recording_id: c for c in candidates}
    picked = pd.DataFrame([{"recording_id": p.recording_id, "operator": p.operator, "priority": ", ".join(p.reasons),
                            "adherence": names[p.recording_id].adherence, "duration": names[p.recording_id].duration}
                           for p in res.picked])
    per_op = Counter(p.operator or "(не указан)" for p in res.picked)
    st.write("По операторам: " + ", ".join(f"{k} — {v}" for k, v in sorted(per_op.items())))
    gold_n = sum(a.is_gold for a in res.plan.items)
    if commit:
        report_data.clear()
        st.success(f"Назначено {len(res.plan.items)} звонков, из них эталонных {gold_n}.")
    else:
        st.info(f"Будет назначено {len(res.plan.items)} звонков, из них эталонных {gold_n}.")
    table(picked, "sample")
