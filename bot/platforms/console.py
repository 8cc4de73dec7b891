"""The terminal as a chat platform: `surveybot try` and `surveybot run` without tokens.

Buttons are shown as numbered or bracketed choices; the customer types the answer (a number,
yes/no, an option's number or label, free text, /skip). :meth:`ConsoleAdapter.reply` turns the
typed line into the answer to the question *on screen*: a number from a numbered list is that
button's tap (so ``2`` under ``1) Yes  2) No`` is No), anything else is typed text (the engine
reads it, /skip included) for the customer and chat the question was asked of, whoever else
has a survey open.
"""

from __future__ import annotations

import itertools
import sys

from rich.console import Console
from rich.markup import escape

from bot.chat import Address, Button, Card, Inbound, Platform, Prompt, Sent, Settled


class ConsoleAdapter:
    platform: Platform = "console"

    def __init__(self, console: Console | None = None, locale: str | None = None) -> None:
        self.console = console or Console(highlight=False, soft_wrap=True)
        self.locale = locale
        self._ids = itertools.count(1)
        self.transcript: list[Prompt] = []
        self.showing: Address | None = None  # whom the question on screen was asked of
        self._numbered: tuple[Button, ...] = ()  # the buttons listed as 1) 2) 3) ...

    async def send(self, address: Address, prompt: Prompt) -> Sent:
        self.transcript.append(prompt)
        out = self.console
        if prompt.hint:
            out.print(f"[yellow]{escape(prompt.hint)}[/yellow]")
        style = "bold" if prompt.kind in ("question", "reminder") else "green"
        out.print(f"[{style}]{escape(prompt.text)}[/{style}]")
        buttons = [b for row in prompt.rows for b in row]
        numbered: tuple[Button, ...] = ()
        if buttons and all(b.label.lstrip("-").isdigit() for b in buttons):
            out.print(escape(f"  [{buttons[0].label}–{buttons[-1].label}]"))
        elif buttons:
            numbered = tuple(buttons)
            for number, button in enumerate(buttons, start=1):
                out.print(f"  {number}) {escape(button.label)}")
        if prompt.skip is not None:
            out.print(f"  (/skip — {escape(prompt.skip.label)})")
        if prompt.kind in ("question", "reminder"):
            self.showing, self._numbered = address, numbered
        elif prompt.kind == "thanks" and address == self.showing:
            self.showing, self._numbered = None, ()
        return Sent(chat_id=address.chat_id or address.user_id, message_id=str(next(self._ids)))

    def reply(self, line: str) -> Inbound | None:
        """The typed line as the answer to the question on screen; None when none is."""
        if self.showing is None:
            return None
        text = line.strip()
        who = {"user_id": self.showing.user_id, "chat_id": self.showing.chat_id}
        if text.isdigit() and 1 <= int(text) <= len(self._numbered):
            payload = self._numbered[int(text) - 1].payload
            return Inbound(platform="console", kind="tap", payload=payload, **who)
        return Inbound(platform="console", kind="text", text=text, **who)

    async def settle(self, inbound: Inbound, settled: Settled) -> None:
        """Nothing to edit in a terminal: the typed answer is already on screen."""

    async def acknowledge(self, inbound: Inbound, notice: str | None = None) -> None:
        if notice:
            self.console.print(f"[yellow]{escape(notice)}[/yellow]")

    async def locale_of(self, address: Address) -> str | None:
        return self.locale

    async def post_card(self, address: Address, card: Card) -> Sent:
        """A staff card on screen (alerts go to Slack or Telegram; this serves a preview)."""
        self.console.print(f"[bold red]{escape(card.title)}[/bold red]")
        for line in card.lines:
            self.console.print(escape(line))
        return Sent(chat_id=address.chat_id or address.user_id, message_id=str(next(self._ids)))

    async def edit_card(self, address: Address, message_id: str, card: Card) -> None:
        await self.post_card(address, card)  # a terminal cannot edit: the new state follows


def read_line() -> str | None:
    """One line from the terminal (with a prompt) or from piped stdin; None at the end."""
    try:
        return input("> ") if sys.stdin.isatty() else sys.stdin.readline() or None
    except EOFError:
        return None
