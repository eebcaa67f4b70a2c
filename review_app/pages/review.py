"""The call page: listen, read the masked transcript, mark each script step,
confirm or add off-script moments, flag an urgent deal, submit.

Speed: the call is loaded once per visit and kept in session state; every
mark, comment or checkbox lives in its own ``st.fragment``, so a click reruns
that step only and is saved to the database at once (the draft). The player
streams a signed URL, so no rerun ever re-reads the audio file.
"""

import time

import streamlit as st

from pipeline.review import accounts, review, signing
from pipeline.review.review import CallView, write_session
from pipeline.speech.transcript import NOT_RETRIED, NOTHING_RECOGNISED, UNCLEAR
from pipeline.vocabulary import Mark, Role
from review_app.labels import literal
from review_app.session import db_url, fmt_time, origin, parse_time, require_role, secret

MARK_LABELS = {
    Mark.CORRECT: "✅ Выполнено верно",
    Mark.INCORRECT: "❌ Выполнено неверно",
    Mark.NOT_IN_SCRIPT: "➖ Не покрыто скриптом",
}
SPEAKERS = {"operator": "Оператор", "client": "Клиент"}
UNHEARD_WHY = {NOTHING_RECOGNISED: "ничего не распознано", UNCLEAR: "неразборчиво", NOT_RETRIED: "не перепроверено"}

user = require_role(Role.LISTENER)

raw = st.query_params.get("call") or st.session_state.get("cr_call")
if not raw:
    st.info("Выберите звонок в своей очереди.")
    st.page_link("pages/queue.py", label="← Мои звонки")
    st.stop()
try:
    aid = int(raw)
except ValueError:
    st.error("Такого звонка нет. Выберите звонок в своей очереди.")
    st.page_link("pages/queue.py", label="← Мои звонки")
    st.stop()
st.session_state["cr_call"] = str(aid)
if st.query_params.get("call") != str(aid):
    st.query_params["call"] = str(aid)  # a reload reopens the same call
VIEW = f"cr_view_{aid}"


def load(refresh: bool = True) -> CallView:
    """The call from the database: opened (and logged) on arrival, refreshed after a change."""
    with write_session(db_url()) as s:  # first open creates the draft
        view = (review.call_view if refresh else review.open_call)(s, user.id, aid)
    st.session_state[VIEW] = view
    return view


try:
    view: CallView = st.session_state.get(VIEW) or load(refresh=False)
except review.NotYourCall:
    st.error("Этого звонка нет в вашей очереди.")
    st.page_link("pages/queue.py", label="← Мои звонки")
    st.stop()

locked = view.locked


STALE = "этот звонок изменён в другой вкладке — обновите страницу."
LOCKED = "Отзыв уже отправлен и не может быть изменён."
ENDED = "Вход завершён. Войдите снова, чтобы продолжить."


def save(fn, *args, where: str) -> bool:
    """Write one change now (the draft), from the version of the review this page
    shows. True once the database has it; otherwise False, and the reason waits
    beside the widget ``where`` (``unsaved``), which stays visibly unsaved.
    Checks the login too: a click in a fragment does not rerun the app."""
    st.session_state.pop(f"cr_err_{aid}_{where}", None)
    try:
        with write_session(db_url()) as s:
            live = accounts.session_user(s, user.session_id) is not None
            if live:
                fn(s, user.id, aid, *args, version=view.version)
        if live:  # committed
            view.version += 1
            return True
        reason = ENDED
    except review.StaleReview:
        reason = "Не сохранено: " + STALE
    except review.ReviewLocked:
        reason = LOCKED
        st.session_state["cr_flash"] = LOCKED + " Показаны сохранённые оценки."
        st.session_state["cr_reload"] = True  # the whole page must now say the review is closed
    st.session_state[f"cr_err_{aid}_{where}"] = reason
    return False


def refresh() -> None:
    """Show what is stored: the whole page reruns and ``show_stored`` runs first."""
    st.session_state[f"cr_refresh_{aid}"] = True
    st.rerun()


def show_stored() -> CallView:
    """Reload the call and put its stored values into this page's widgets (a
    widget keeps its own value otherwise); before any widget is drawn."""
    fresh = load()
    for k in [k for k in st.session_state if isinstance(k, str) and k.startswith(f"cr_err_{aid}_")]:
        del st.session_state[k]
    for step in fresh.steps:
        st.session_state[f"mark_{aid}_{step.id}"] = step.mark
        st.session_state[f"comment_{aid}_{step.id}"] = step.comment
    for j, item in enumerate(fresh.off_script):
        st.session_state[f"offs_{aid}_{j}"] = item.confirmed_id is not None
        st.session_state[f"offs_desc_{aid}_{j}"] = item.description
    st.session_state[f"urgent_{aid}"] = fresh.urgent
    st.session_state[f"urgent_reason_{aid}"] = fresh.urgent_reason
    return fresh


def initial(key: str, value):
    """A widget's default, given only while session state holds no value for it
    (``refresh`` sets them; Streamlit warns when a widget gets both)."""
    return type(value)() if key in st.session_state else value


def unsaved(where: str) -> None:
    """Beside a widget whose last change the database refused: why, and a button
    to see the stored values. After a refusal because the review was submitted
    elsewhere the whole page reloads at once."""
    if st.session_state.pop("cr_reload", False):
        refresh()
    reason = st.session_state.get(f"cr_err_{aid}_{where}")
    if reason:
        c1, c2 = st.columns([5, 1])
        c1.error(reason)
        if c2.button("Обновить", key=f"refresh_{aid}_{where}"):
            refresh()


def play_from(seconds: float | None) -> None:
    st.session_state["cr_play"] = (aid, max(0.0, float(seconds or 0.0)))
    st.rerun()


if st.session_state.pop(f"cr_refresh_{aid}", False):
    view = show_stored()
    locked = view.locked

# --- header and player -----------------------------------------------------------

st.title(f"Звонок №{view.number}")
st.caption(
    f"Длительность {fmt_time(view.duration)} · скрипт: {view.checklist_title or '—'} · "
    + ("**отправлен, изменения закрыты**" if locked else "черновик сохраняется автоматически")
)
if msg := st.session_state.pop("cr_flash", None):
    st.warning(msg)

play_aid, start = st.session_state.get("cr_play", (aid, 0.0))
start = start if play_aid == aid else 0.0
with st.sidebar:
    st.subheader("Запись")
    if view.has_audio:
        # Re-sign only when the link might die before the call could be played
        # through once more: a new URL would reload the player.
        url_key = f"cr_audio_{aid}"
        url, expires = st.session_state.get(url_key, ("", 0.0))
        length = view.duration or 0.0
        if time.time() > expires - length - signing.AUDIO_TTL_S / 3:
            url = origin() + signing.audio_path(aid, user.session_id, secret(), length)
            st.session_state[url_key] = (url, time.time() + signing.audio_ttl(length))
        st.audio(url, format="audio/ogg", start_time=int(start), autoplay=start > 0)
        st.caption(f"Воспроизведение с {fmt_time(start)}" if start else "Нажмите ▶ у шага, чтобы слушать с нужного места.")
    else:
        st.warning("Для этого звонка нет записи для прослушивания; работайте по расшифровке.")
    if view.unheard:
        # the transcript has no words here although someone speaks: the listener must listen
        st.warning("Речь без расшифровки — послушайте запись в этих местах:")
        for k, (s, e, why) in enumerate(view.unheard):
            label = f"▶ {fmt_time(s)}–{fmt_time(e)}" + (f" ({UNHEARD_WHY[why]})" if why in UNHEARD_WHY else "")
            if st.button(label, key=f"unheard_{aid}_{k}", disabled=not view.has_audio):
                play_from(s)

steps_col, text_col = st.columns([3, 2], gap="large")

# --- steps -----------------------------------------------------------------------


def _step_fragment(i: int) -> None:
    step = view.steps[i]
    key = f"mark_{aid}_{step.id}"
    ckey = f"comment_{aid}_{step.id}"

    def on_mark() -> None:
        value = st.session_state[key]
        if save(review.save_mark, step.id, value, where=step.id):
            step.mark = value

    def on_confirm() -> None:
        if save(review.save_mark, step.id, Mark.CORRECT, where=step.id):
            step.mark = Mark.CORRECT
            st.session_state[key] = Mark.CORRECT

    def on_comment() -> None:
        value = st.session_state[ckey]
        if save(review.save_comment, step.id, value, where=step.id):
            step.comment = value

    with st.container(border=True):
        head = f"**{i + 1}. {step.title}**" + ("" if step.required else " · _необязательный_")
        st.markdown(head + (" ✔️" if step.mark else ""))
        if step.description:
            st.caption(step.description)
        if step.examples:
            with st.expander("Примеры фраз"):
                st.markdown("\n".join(f"- {e}" for e in step.examples))
        sug = step.suggestion
        c1, c2, c3 = st.columns([5, 2, 2])
        if sug is not None and sug.found:
            conf = f" · уверенность {sug.confidence:.0%}" if sug.confidence is not None else ""
            if sug.doubtful:  # a question for the listener, not an answer
                c1.markdown(f"Подсказка, проверьте: возможно, в **{fmt_time(sug.start)}** — «{literal(sug.quote)}»?{conf}")
            else:
                c1.markdown(f"Подсказка: найдено в **{fmt_time(sug.start)}** — «{literal(sug.quote)}»{conf}")
            if c2.button(f"▶ {fmt_time(sug.start)}", key=f"play_{aid}_{step.id}", help="Слушать с этого места"):
                play_from(sug.start)
            if step.mark is None and not locked and not sug.doubtful:
                c3.button("✓ Подтвердить", key=f"confirm_{aid}_{step.id}", on_click=on_confirm,
                          help="Отметить «выполнено верно» одним нажатием")
        else:
            c1.markdown("Подсказка: _не найдено в расшифровке_")
        st.radio(
            "Оценка",
            list(MARK_LABELS),
            # Once the key is in session state it holds the value; a default too would warn.
            index=None if key in st.session_state or not step.mark else list(MARK_LABELS).index(step.mark),
            format_func=MARK_LABELS.get,
            key=key,
            horizontal=True,
            on_change=on_mark,
            disabled=locked,
            label_visibility="collapsed",
        )
        st.text_input("Комментарий", value=initial(ckey, step.comment), key=ckey, on_change=on_comment, disabled=locked,
                      placeholder="Комментарий (необязательно)", label_visibility="collapsed")
        unsaved(step.id)


step_fragment = st.fragment(_step_fragment)

with steps_col:
    st.subheader("Шаги скрипта")
    if not view.steps:
        st.warning("Для этого звонка ещё нет сопоставления со скриптом.")
    for i in range(len(view.steps)):
        step_fragment(i)

# --- off-script moments ----------------------------------------------------------


def _off_script_fragment(j: int) -> None:
    item = view.off_script[j]
    ck = f"offs_{aid}_{j}"
    dk = f"offs_desc_{aid}_{j}"

    def on_change() -> None:
        confirmed = st.session_state[ck]
        desc = st.session_state.get(dk, item.description)
        if save(review.confirm_off_script, item.utterance_idx, confirmed, desc, item.start, where=f"offs{j}"):
            item.confirmed_id = 1 if confirmed else None
            item.description = desc if confirmed else ""

    with st.container(border=True):
        c1, c2 = st.columns([6, 2])
        conf = f" · уверенность {item.confidence:.0%}" if item.confidence is not None else ""
        if item.doubtful:  # a question for the listener, not an answer
            c1.markdown(f"Возможно, вне скрипта, проверьте: **{fmt_time(item.start)}** — «{literal(item.text)}»?{conf}")
        else:
            c1.markdown(f"**{fmt_time(item.start)}** — «{literal(item.text)}»{conf}")
        if c2.button(f"▶ {fmt_time(item.start)}", key=f"play_off_{aid}_{j}"):
            play_from(item.start)
        st.checkbox("Это ситуация, которую скрипт не покрывает", value=initial(ck, item.confirmed_id is not None),
                    key=ck, on_change=on_change, disabled=locked)
        if st.session_state.get(ck):
            st.text_input("Кратко опишите ситуацию", value=initial(dk, item.description), key=dk, on_change=on_change,
                          disabled=locked)
        unsaved(f"offs{j}")


off_script_fragment = st.fragment(_off_script_fragment)

with steps_col:
    st.subheader("Вне скрипта")
    if not view.off_script:
        st.caption("Система не нашла реплик вне скрипта.")
    for j in range(len(view.off_script)):
        off_script_fragment(j)
    for m in view.moments:
        with st.container(border=True):
            c1, c2, c3 = st.columns([6, 1, 1])
            c1.markdown(f"**{fmt_time(m.time)}** — {literal(m.description)}" + (f" · «{literal(m.text)}»" if m.text else ""))
            if c2.button("▶", key=f"play_m_{m.id}"):
                play_from(m.time)
            if not locked and c3.button("🗑", key=f"del_m_{m.id}", help="Удалить момент"):
                if save(review.remove_moment, m.id, where="moment"):
                    refresh()
    if not locked:
        with st.form(f"add_moment_{aid}", clear_on_submit=True):
            st.markdown("**Добавить ситуацию вне скрипта**")
            c1, c2 = st.columns([1, 4])
            when = c1.text_input("Время (м:сс)", value=fmt_time(start))
            desc = c2.text_input("Что произошло")
            if st.form_submit_button("Добавить момент"):
                try:
                    seconds = parse_time(when)
                except ValueError:
                    st.error("Время укажите как м:сс, например 1:05.")
                else:
                    if not desc.strip():
                        st.error("Опишите ситуацию в нескольких словах.")
                    elif save(review.add_moment, seconds, desc.strip(), where="moment"):
                        refresh()
    unsaved("moment")

# --- urgent flag and submit --------------------------------------------------------


@st.fragment
def urgent_fragment() -> None:
    uk, rk = f"urgent_{aid}", f"urgent_reason_{aid}"

    def on_change() -> None:
        flag = st.session_state[uk]
        reason = st.session_state.get(rk, view.urgent_reason)
        if save(review.set_urgent, flag, reason, where="urgent"):
            view.urgent, view.urgent_reason = flag, reason if flag else ""

    with st.container(border=True):
        st.checkbox("🚨 Срочно: спасти сделку", value=initial(uk, view.urgent), key=uk, on_change=on_change, disabled=locked,
                    help="Владелец увидит отметку сразу, не дожидаясь отправки")
        if st.session_state.get(uk):
            st.text_input("Почему срочно", value=initial(rk, view.urgent_reason), key=rk, on_change=on_change, disabled=locked,
                          placeholder="Например: клиент готов купить сегодня, но ждёт звонка")
        unsaved("urgent")


with steps_col:
    st.subheader("Итог")
    urgent_fragment()
    if locked:
        st.success("Отзыв отправлен. Спасибо!")
    elif st.button("Отправить отзыв", type="primary", key=f"submit_{aid}"):
        try:
            with write_session(db_url()) as s:
                review.submit_review(s, user.id, aid, version=view.version)
        except review.IncompleteReview as exc:
            st.error("Отметьте все шаги перед отправкой. Не отмечены: " + ", ".join(exc.missing))
        except review.StaleReview:
            st.session_state[f"cr_err_{aid}_submit"] = "Не отправлено: " + STALE
        else:
            refresh()
    unsaved("submit")
    st.page_link("pages/queue.py", label="← Мои звонки")

# --- transcript --------------------------------------------------------------------

with text_col:
    st.subheader("Расшифровка")
    tkey = f"cr_transcript_{aid}"
    if tkey not in st.session_state:
        st.session_state[tkey] = "\n\n".join(
            f"`{fmt_time(u.start)}` **{SPEAKERS.get(u.speaker, 'Говорящий')}:** {literal(u.text)}" for u in view.utterances
        ) or "_Расшифровки нет._"
    with st.container(height=700):
        st.markdown(st.session_state[tkey])
