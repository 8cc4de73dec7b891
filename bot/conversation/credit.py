"""Agent credit: the staff member who triggers a survey is its ``agent``.

Reports segment by the ``agent`` context key (``surveybot report --by agent``). A helpdesk that
calls the HTTP API names the agent itself; when staff trigger a survey in chat (a Slack ✅ or
"Send survey" shortcut, ``/survey`` on either platform) the person who did it is recorded,
unless the trigger named an agent explicitly (``/survey csat @maria agent=Nikos``).
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.conversation.admission import MAX_CONTEXT_KEYS

AGENT = "agent"


def credited(context: Mapping[str, str] | None, agent: str | None) -> dict[str, str]:
    """``context`` with ``agent`` filled in when the trigger did not name one (and the context
    has room for it: crediting never pushes a request over the context limit)."""
    result = dict(context or {})
    full = len(result) >= MAX_CONTEXT_KEYS
    if agent and agent.strip() and not result.get(AGENT, "").strip() and not full:
        result[AGENT] = agent.strip()
    return result
