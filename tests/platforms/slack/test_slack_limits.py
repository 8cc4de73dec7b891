"""Staff `/survey` in Slack meets the same context limits as the HTTP API: over them, staff are
told why and nothing is stored (the command parser reads only the syntax; Dispatcher.request
holds the limits for every trigger, see tests/conversation/test_admission.py)."""

from __future__ import annotations

from pathlib import Path

from tests.support.slack_support import AMY, STAFF, workspace


async def test_a_slack_survey_with_201_context_keys_or_a_20_kb_value_is_refused(
    tmp_path: Path, flows_dir: Path
) -> None:
    many = " ".join(f"k{i}=v" for i in range(201))
    async with workspace(tmp_path, flows_dir, "socket") as ws:
        (seen,) = await ws.command(STAFF, f"csat <@{AMY}> {many}")
        assert seen == (
            f"Could not send survey “csat” to <@{AMY}>: context has 201 keys; at most 50 are "
            "allowed"
        )
        (seen,) = await ws.command(STAFF, f"csat <@{AMY}> note={'x' * 20_000}")
        assert "context value of 'note' has 20000 characters; at most 1000" in seen, seen[:200]
        assert ws.messages(AMY) == []
        assert await ws.svc.storage.count_rows("sessions") == 0
        ok = await ws.command(STAFF, f"csat <@{AMY}> " + " ".join(f"k{i}=v" for i in range(50)))
        assert ok == [f"Survey “csat” sent to <@{AMY}>."]
