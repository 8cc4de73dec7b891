"""The alert buttons, pressed every way a button can be pressed: by staff, twice, by someone
who is not staff, with a payload made up or copied to another message. Real storage (SQLite)
and the recording adapter; the stories through the real SDKs are tests/stories."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.chat import Inbound, encode_followup
from bot.conversation.alert_view import alert_card
from bot.conversation.followup_desk import FollowupDesk
from storage.base import Followup
from storage.sqlite.backend import SQLiteStorage
from tests.storage.test_queue_contract import session
from tests.support.recording import RecordingAdapter

NOW = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
SID = "s-anna-00001"


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[tuple[FollowupDesk, RecordingAdapter, int]]:
    storage = SQLiteStorage(f"sqlite:///{tmp_path / 'desk.db'}")
    await storage.open()
    await storage.create_session(session(SID))
    await storage.followup_put([Followup(
        session_id=SID, question_id="score", flow_id="nps", platform="telegram", user_id="42",
        metric="nps", score=3, scale_max=10, destination="slack:C0STAFF", locale="en",
        created_at=NOW,
    )])  # fmt: skip
    followup = await storage.followup_of(SID, "score")
    assert followup is not None and followup.id is not None
    await storage.followup_posted(followup.id, "1700000000.000100")
    adapter = RecordingAdapter(platform="slack")
    staff = {"slack": {"U0STELLA", "U0LEO"}}
    yield FollowupDesk(storage, staff, {"slack": adapter}, clock=lambda: NOW), adapter, followup.id
    await storage.close()


def press(payload: str, user: str = "U0STELLA", **where: str) -> Inbound:
    values = {"chat_id": "C0STAFF", "message_id": "1700000000.000100"} | where
    return Inbound(platform="slack", kind="tap", user_id=user, payload=payload, **values)


async def owed_updates(desk: FollowupDesk) -> int:
    return len(await desk.storage.outbox_recent(lane="bulk"))


async def test_staff_own_it_once_and_a_second_press_is_told_who_has_it(
    desk: tuple[FollowupDesk, RecordingAdapter, int],
) -> None:
    desk_, adapter, fid = desk
    own = encode_followup(SID, fid, "own")
    assert await desk_.press(press(own)) == "owned"
    assert (
        await desk_.press(
            press(
                own,
                "U0LEO",
            )
        )
        == "unchanged"
    )
    assert adapter.acks[-1][1] == "<@U0STELLA> is already following this up."
    assert await desk_.press(press(encode_followup(SID, fid, "done"), "U0LEO")) == "resolved"
    assert await desk_.press(press(encode_followup(SID, fid, "done"))) == "unchanged"
    assert adapter.acks[-1][1] == "This was already resolved by <@U0LEO>."
    assert await owed_updates(desk_) == 2  # one card update per change that applied


@pytest.mark.parametrize(
    ("payload", "where"),
    [("sf1:s-forged-0001:{fid}:own", {}),  # a made-up session id
     ("sf1:{sid}:{fid}:own", {"message_id": "1700000000.999999"}),  # copied to another message
     ("sf1:{sid}:{fid}:own", {"chat_id": "C0ELSEWHERE"}),  # pressed in another channel
     ("sf1:{sid}:{other}:own", {}),  # another follow-up's number
     ("sf1:{sid}:{fid}:delete", {}), ("sf1:garbage", {})],  # not our format
)  # fmt: skip
async def test_a_forged_or_moved_payload_changes_nothing(
    desk: tuple[FollowupDesk, RecordingAdapter, int], payload: str, where: dict[str, str]
) -> None:
    desk_, adapter, fid = desk
    forged = payload.format(sid=SID, fid=fid, other=fid + 1)
    assert await desk_.press(press(forged, **where)) == "invalid"
    assert adapter.acks[-1][1] == "This button is not valid any more."
    now = await desk_.storage.followup_get(fid)
    assert now is not None and now.owner is None and await owed_updates(desk_) == 0


async def test_someone_who_is_not_staff_is_refused_in_their_language(
    desk: tuple[FollowupDesk, RecordingAdapter, int],
) -> None:
    desk_, adapter, fid = desk
    inbound = press(encode_followup(SID, fid, "done"), "U0EVE").model_copy(
        update={"locale": "el-GR"}
    )
    assert await desk_.press(inbound) == "not_staff"
    assert adapter.acks[-1][1] == (
        "Μόνο η ομάδα υποστήριξης μπορεί να χειριστεί τις ειδοποιήσεις. Αν πρέπει να είστε σε "
        "αυτήν, ζητήστε από έναν διαχειριστή να προσθέσει το αναγνωριστικό σας στο Slack "
        "(U0EVE) στο staff.slack του config.yaml."
    )
    now = await desk_.storage.followup_get(fid)
    assert now is not None and now.resolved_at is None and await owed_updates(desk_) == 0


def test_the_card_reads_well_on_either_platform_and_its_buttons_fit_telegram() -> None:
    slack_customer = Followup(
        id=987654321012, session_id="Ab3_-Zx9Qw12Ab3_-Zx9Qw12", question_id="satisfied",
        flow_id="csat", platform="slack", user_id="U0AMY", user_name="amy", metric="csat",
        score=0, scale_max=None, destination="telegram:-1001234567890:7", locale="lt",
        created_at=NOW,
    )  # fmt: skip
    card = alert_card(slack_customer)
    assert card.title == "⚠️ Nepatenkintas klientas: CSAT Ne"
    assert "Klientas: amy (slack U0AMY)" in card.lines  # no Slack mention on Telegram
    assert card.lines[-1] == "Norėdami pridėti pastabą, atsakykite į šį įspėjimą."
    assert all(len(b.payload.encode()) <= 64 for row in card.rows for b in row)
    resolved = alert_card(slack_customer.model_copy(update={
        "owner": "telegram:9001", "owner_name": "Maria", "owned_at": NOW,
        "resolved_by": "telegram:9001", "resolved_by_name": "Maria", "resolved_at": NOW,
        "note": "Paskambinau",
    }))  # fmt: skip
    assert resolved.rows == ()
    assert resolved.lines[-2:] == ("✅ Išsprendė Maria (telegram 9001) (2026-01-05 09:30 UTC)",
                                   "Pastaba: Paskambinau")  # fmt: skip
