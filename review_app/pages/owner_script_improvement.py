"""Script improvement: situations the script does not cover, grouped, with
quotes and audio clips; the owner marks a group "covered in script vN" and
then sees whether it still happens in calls on vN or later. Below, what the
aligner learned from reviews, where the owner strikes out a wrong example
(the same as ``callreview checklists examples --drop``)."""

from pathlib import Path

import streamlit as st

from pipeline.errors import AudioError, CallreviewError
from pipeline.reports import situations
from pipeline.script.checklist import OFF_SCRIPT
from pipeline.speech import audio
from pipeline.storage import checklists
from pipeline.storage.store import ChecklistVersion, session_scope
from review_app import labels
from review_app.labels import literal
from review_app.report_ui import owner_db, refresh_button, report_data, table

url = owner_db()
st.title("Улучшение скрипта")
st.caption("Всё, что слушатели отметили как «нет в скрипте», и фразы вне скрипта, которые машина нашла в ещё не "
           "прослушанных звонках, сгруппировано по смыслу. Ситуация, которую не подтвердил ни один слушатель, помечена "
           "«не подтверждено»: машина ошибается примерно в трети таких фраз. Отметьте ситуацию, когда добавите её в "
           "новую версию скрипта: отчёт покажет, встречается ли она после этого.")
refresh_button()


@st.cache_data(max_entries=200, show_spinner=False)
def clip(path: str, start: float, end: float) -> bytes | None:
    """Only the seconds around the quote go to the browser, not the whole call."""
    try:
        return audio.clip(path, start, end)
    except AudioError:
        return None


@st.cache_data(ttl=60, show_spinner="Группирую ситуации…")
def load(url: str, threshold: float):
    with session_scope(url) as s:
        sits = situations.situations(s, threshold)
        versions = sorted({(v.checklist_id, v.version) for v in s.query(ChecklistVersion)})
    return sits, versions


threshold = st.slider("Строгость группировки", 1.5, 4.0, situations.DEFAULT_THRESHOLD, 0.25,
                      help="Выше — группы мельче и точнее; ниже — крупнее.")
sits, versions = load(url, threshold)
data = report_data(url)
df = situations.to_frame(sits, data.step_titles)
table(df.drop(columns=["items"]), "situations")

SHOWN = {
    "все": lambda sit: True,
    "открытые": lambda sit: not sit.coverage and sit.confirmed,
    "не подтверждённые": lambda sit: not sit.coverage and not sit.confirmed,
    "закрытые скриптом": lambda sit: sit.coverage is not None,
}
show = st.radio("Показать", list(SHOWN), horizontal=True)
for sit in filter(SHOWN[show], sits):
    icon = "🟢" if sit.coverage and not sit.since_covered else ("🟠" if sit.coverage else ("🔴" if sit.confirmed else "⚪"))
    confirmed = f"подтверждено слушателями {sit.confirmed}" if sit.confirmed else "не подтверждено"
    with st.expander(f"{icon} {sit.number}. {literal(sit.label)} — {sit.count} раз, {sit.calls} звонков, {confirmed}"):
        c1, c2, c3 = st.columns(3)
        c1.write(f"Шаг: **{data.title(next((i.checklist_id for i in sit.items if i.checklist_id), ''), sit.step_id or '') if sit.step_id else '—'}**")
        c2.write(f"Впервые: {sit.first_seen:%d.%m.%Y}" if sit.first_seen else "Впервые: —")
        c3.write(f"Последний раз: {sit.last_seen:%d.%m.%Y}" if sit.last_seen else "Последний раз: —")
        if sit.coverage:
            st.write(f"Закрыто в скрипте **{sit.coverage.checklist_id} v{sit.coverage.version}**; "
                     f"после этого встречалось: **{sit.since_covered}** раз в {sit.calls_since_covered} звонках.")
        for item in sit.items[:5]:
            st.markdown(f"> {literal(item.quote or item.text)}")
            if item.by_machine:
                st.caption("найдено машиной в непрослушанном звонке, не подтверждено")
            elif item.text and item.text != item.quote:
                st.caption(f"{literal(item.reviewer)}: {literal(item.text)}")
            if item.listen_path and Path(item.listen_path).is_file() and item.start is not None:
                sound = clip(item.listen_path, item.start, item.end or item.start + situations.MOMENT_CLIP_S)
                if sound:
                    st.audio(sound, format="audio/ogg")
        if versions:
            with st.form(f"cover-{sit.number}-{sit.keys[0]}"):
                v = st.selectbox("Закрыто в версии скрипта", versions, index=len(versions) - 1,
                                 format_func=lambda cv: f"{cv[0]} v{cv[1]}")
                if st.form_submit_button("Отметить: добавлено в скрипт"):
                    try:
                        with session_scope(url) as s:
                            situations.mark_covered(s, sit.keys, v[0], v[1], sit.label, "owner")
                    except CallreviewError as exc:
                        st.error(labels.error(exc))
                    else:
                        load.clear()
                        st.rerun()

st.subheader("Чему система научилась по отзывам")
st.caption("Каждый шаг, подтверждённый слушателем, и каждый момент «нет в скрипте» — пример, по которому следующая "
           "разметка звонков на этой версии скрипта узнаёт такие фразы. Снимите галочку с неверного примера: "
           "система перестанет по нему учиться.")
if versions:
    cid = st.selectbox("Скрипт", sorted({v[0] for v in versions}), key="learned_script")
    with session_scope(url) as s:
        rows = {v.id: f"v{v.version} · {v.sha256[:8]}" for v in checklists.stored_versions(s, cid)}
    vid = st.selectbox("Версия скрипта", list(rows), index=len(rows) - 1, format_func=rows.get, key="learned_version")
    with session_scope(url) as s:
        learned = checklists.learned_examples(s, vid)
    st.write(f"Примеров: {len(learned)}, из них не учитываются: {sum(e.dropped for e in learned)}.")
    for n, ex in enumerate(learned):
        what = "нет в скрипте" if ex.key == OFF_SCRIPT else data.title(cid, ex.key)
        keep = st.checkbox(f"{literal(what)} · подтверждено {ex.reviews} раз: «{literal(ex.text)}»", value=not ex.dropped,
                           key=f"learned-{vid}-{n}")
        if keep == ex.dropped:  # the owner ticked or unticked it just now
            with session_scope(url) as s:
                checklists.set_dropped(s, vid, ex, dropped=not keep)
            st.rerun()
