"""The pure engine: stories of one customer, then properties over any sequence of replies."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.survey.engine import Reply, SessionState, Step, advance, begin
from bot.survey.flow import Ces, Choice, Flow, FreeText, Nps, Rating, YesNo
from bot.survey.loader import load_flow
from bot.survey.prompts import question_prompt
from tests.conftest import SHIPPED_FLOWS


def shipped(flow_id: str) -> Flow:
    flow, errors = load_flow(SHIPPED_FLOWS / f"{flow_id}.yaml")
    assert flow is not None, errors
    return flow


FLOWS = {name: shipped(name) for name in ("csat", "nps", "ces")}


def text(value: str) -> Reply:
    return Reply(kind="text", value=value)


def tap(index: int, value: str) -> Reply:
    return Reply(kind="tap", question_index=index, value=value)


def run(flow: Flow, *replies: Reply, locale: str = "en") -> Step:
    step = begin(flow, locale)
    for reply in replies:
        step = advance(flow, step.state, reply)
    return step


def test_promoter_types_nine_then_a_comment_and_is_done() -> None:
    flow = FLOWS["nps"]
    step = run(flow, text(" 9 "))
    assert step.outcome == "ask" and step.answer is not None and step.answer.value == 9
    assert flow.questions[step.state.current or 0].id == "promoter_reason"
    step = advance(flow, step.state, text("Great service"))
    assert step.outcome == "done" and step.answer is not None
    assert step.answer.text == "Great service"


def test_detractor_gets_the_detractor_follow_up() -> None:
    step = run(FLOWS["nps"], tap(0, "3"))
    assert FLOWS["nps"].questions[step.state.current or 0].id == "detractor_reason"


def test_greek_customer_types_ochi_and_is_asked_what_went_wrong() -> None:
    flow = FLOWS["csat"]
    step = run(flow, text("Όχι"), locale="el-GR")
    assert step.state.locale == "el"
    assert step.answer is not None and step.answer.value == 0
    assert flow.questions[step.state.current or 0].id == "what_went_wrong"


def test_lithuanian_taip_means_yes_and_ends_the_csat_survey() -> None:
    step = run(FLOWS["csat"], text("taip"), locale="lt")
    assert step.outcome == "done" and step.answer is not None and step.answer.value == 1


def test_unknown_locale_falls_back_to_the_first_one() -> None:
    assert begin(FLOWS["ces"], "fr-FR").state.locale == "en"


def test_garbage_gets_a_hint_and_the_same_question() -> None:
    step = run(FLOWS["nps"], text("eleven"))
    assert step.outcome == "invalid" and step.hint == "hint_scale"
    assert step.hint_params == {"min": 0, "max": 10} and step.state.current == 0
    assert run(FLOWS["nps"], text("11")).outcome == "invalid"


def test_skip_only_works_on_optional_questions() -> None:
    flow = FLOWS["ces"]
    assert run(flow, Reply(kind="skip")).hint == "hint_required"
    step = run(flow, tap(0, "6"), Reply(kind="skip"))
    assert step.outcome == "done" and step.answer is not None and step.answer.skipped


def test_old_and_forged_buttons_change_nothing() -> None:
    flow = FLOWS["nps"]
    step = run(flow, tap(0, "10"))
    assert advance(flow, step.state, tap(0, "2")).outcome == "stale"
    assert advance(flow, step.state, tap(7, "1")).outcome == "forged"
    fresh = begin(flow, "en")
    assert advance(flow, fresh.state, tap(0, "11")).outcome == "forged"
    assert advance(flow, fresh.state, tap(0, "-1")).outcome == "forged"


def test_choice_accepts_number_label_or_id() -> None:
    flow = Flow.model_validate(
        {
            "id": "channel",
            "name": "Channel",
            "locales": ["en", "el"],
            "questions": [
                {
                    "id": "via",
                    "type": "choice",
                    "text": {"en": "How did you reach us?", "el": "Πώς επικοινωνήσατε;"},
                    "options": [
                        {"id": "phone", "text": {"en": "Phone", "el": "Τηλέφωνο"}},
                        {"id": "chat", "text": {"en": "Chat", "el": "Συνομιλία"}},
                    ],
                }
            ],
        }
    )
    for typed in ("2", "chat", "συνομιλία", " Chat "):
        step = run(flow, text(typed))
        assert step.answer is not None and step.answer.option == "chat", typed


def test_nps_buttons_come_in_two_rows_and_fit_callback_data() -> None:
    flow = FLOWS["nps"]
    prompt = question_prompt(flow, begin(flow, "en").state, "AbCdEfGhIjKl")
    assert [len(row) for row in prompt.rows] == [6, 5]
    assert all(len(b.payload.encode()) <= 64 for row in prompt.rows for b in row)


# ---- properties --------------------------------------------------------------------------

replies = st.one_of(
    st.builds(text, st.text(max_size=30)),
    st.builds(text, st.integers(-3, 14).map(str)),
    st.builds(text, st.sampled_from(["yes", "no", "ναι", "όχι", "taip", "ne", "/skip"])),
    st.builds(tap, st.integers(-1, 5), st.sampled_from([str(i) for i in range(-1, 13)])),
    st.just(Reply(kind="skip")),
)


def check_recorded(flow: Flow, before: SessionState, step: Step) -> None:
    answer = step.answer
    if answer is None:
        assert step.state == before
        return
    question = flow.questions[answer.question_index]
    assert question.visible(before.answers), "asked a question whose `when` is false"
    if answer.skipped:
        assert question.optional
    elif isinstance(question, Rating | Nps | Ces):
        lo, hi = question.bounds()
        assert answer.value is not None and lo <= answer.value <= hi
    elif isinstance(question, YesNo):
        assert answer.value in (0, 1)
    elif isinstance(question, Choice):
        assert answer.option in {o.id for o in question.options}
    elif isinstance(question, FreeText):
        assert answer.text and len(answer.text) <= question.max_length


@settings(max_examples=300, deadline=None)
@given(
    flow_id=st.sampled_from(sorted(FLOWS)),
    locale=st.sampled_from(["en", "el", "lt", "de", None]),
    script=st.lists(replies, max_size=25),
)
def test_any_sequence_of_replies_is_safe(
    flow_id: str, locale: str | None, script: list[Reply]
) -> None:
    flow = FLOWS[flow_id]
    step = begin(flow, locale)
    for reply in script:
        if step.state.done:
            assert advance(flow, step.state, reply).outcome == "stale"
            break
        before = step.state
        step = advance(flow, before, reply)  # never raises
        check_recorded(flow, before, step)
        if step.state.current is not None:
            assert flow.questions[step.state.current].visible(step.state.answers)


def valid_reply(flow: Flow, state: SessionState) -> Reply:
    question = flow.questions[state.current or 0]
    if isinstance(question, Rating | Nps | Ces):
        return text(str(question.bounds()[0]))
    if isinstance(question, YesNo):
        return text("no")
    if isinstance(question, Choice):
        return text("1")
    return text("fine")


@given(flow_id=st.sampled_from(sorted(FLOWS)))
def test_valid_replies_finish_within_as_many_steps_as_questions(flow_id: str) -> None:
    flow = FLOWS[flow_id]
    step = begin(flow, "en")
    for _ in range(len(flow.questions)):
        if step.outcome == "done":
            break
        step = advance(flow, step.state, valid_reply(flow, step.state))
    assert step.outcome == "done"


def test_shipped_flow_files_exist() -> None:
    assert {p.stem for p in Path(SHIPPED_FLOWS).glob("*.yaml")} == {"csat", "nps", "ces"}
