"""What a detractor alert shows staff, as a :class:`bot.chat.Card` built from its follow-up
(pure): the score, the flow, the customer, the agent and ticket, the comment once it arrives,
who is following up or resolved it, the note (or how to add one), and the buttons still
useful ("I'll follow up" until someone has; "Resolved" until it is). Written in the team's
language (the rule's ``locale``)."""

from __future__ import annotations

from datetime import datetime

from bot.chat import Button, Card, encode_followup
from bot.survey.alert_texts import METRICS, alert_text
from bot.survey.texts import text_for
from storage.base import Followup


def score_label(followup: Followup) -> str:
    """``3/10``, ``2/7``; a yes/no answer as the word, in the alert's language."""
    if followup.score is None:
        return "—"
    if followup.scale_max is None:
        return text_for("yes" if followup.score == 1 else "no", followup.locale)
    return f"{followup.score}/{followup.scale_max}"


def when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else ""


def who(platform: str, user_id: str | None, name: str | None, shown_on: str = "slack") -> str:
    """A person as staff will recognize them: a mention on a card in Slack (Slack shows the
    name), else the name and the ID."""
    if user_id is None:
        return "—"
    if platform == "slack" and shown_on == "slack":
        return f"<@{user_id}>"
    return f"{name} ({platform} {user_id})" if name else f"{platform} {user_id}"


def staff_member(ref: str | None, name: str | None) -> str:
    """``slack:U123`` -> ``<@U123>``; ``telegram:42`` -> the name (or ``telegram 42``). Staff
    press the card where it is shown, so a Slack member is always shown in Slack."""
    platform, _, user_id = (ref or "").partition(":")
    return who(platform, user_id or None, name)


def alert_card(followup: Followup) -> Card:
    loc = followup.locale
    shown_on = followup.destination.partition(":")[0]
    assert followup.id is not None
    title = alert_text("title", loc, {"metric": METRICS.get(followup.metric, followup.metric),
                                      "score": score_label(followup)})  # fmt: skip
    lines = [
        alert_text("flow", loc, {"flow": followup.flow_id}),
        alert_text("customer", loc, {"who": who(followup.platform, followup.user_id,
                                                followup.user_name, shown_on)}),
    ]  # fmt: skip
    if followup.agent:
        lines.append(alert_text("agent", loc, {"agent": followup.agent}))
    if followup.ticket_id:
        lines.append(alert_text("ticket", loc, {"ticket": followup.ticket_id}))
    if followup.comment:
        lines.append(alert_text("comment", loc, {"comment": followup.comment}))
    else:
        lines.append(alert_text("no_comment", loc))
    owner = staff_member(followup.owner, followup.owner_name)
    if followup.resolved_at is not None:
        if followup.owner != followup.resolved_by:
            lines.append(alert_text("owned", loc, {"name": owner, "time": when(followup.owned_at)}))
        resolver = staff_member(followup.resolved_by, followup.resolved_by_name)
        lines.append(alert_text("resolved", loc, {"name": resolver,
                                                  "time": when(followup.resolved_at)}))  # fmt: skip
    elif followup.owner is not None:
        lines.append(alert_text("owned", loc, {"name": owner, "time": when(followup.owned_at)}))
    else:
        lines.append(alert_text("open", loc))
    if followup.note:
        lines.append(alert_text("note", loc, {"note": followup.note}))
    else:
        lines.append(alert_text(f"note_hint_{shown_on}", loc))
    buttons: list[Button] = []
    if followup.owner is None and followup.resolved_at is None:
        buttons.append(
            Button(
                label=alert_text("own_button", loc),
                payload=encode_followup(followup.session_id, followup.id, "own"),
            )
        )
    if followup.resolved_at is None:
        buttons.append(
            Button(
                label=alert_text("done_button", loc),
                payload=encode_followup(followup.session_id, followup.id, "done"),
            )
        )
    return Card(title=title, lines=tuple(lines), rows=(tuple(buttons),) if buttons else ())
