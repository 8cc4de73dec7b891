"""Pure Telegram rendering: prompts as HTML text plus inline-keyboard rows, the texts the bot
says around surveys (en, el, lt; what staff read after a trigger comes from
:func:`bot.conversation.triggers.staff_reply`). No I/O, no ``telegram`` import:
bot/platforms/telegram/adapter.py turns these values into Bot API calls.

Telegram measures text in UTF-16 code units after entity parsing (4096 for a message, 200 for
a callback alert); :func:`fit` cuts on a character boundary and marks the cut with "…".
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from bot.chat import Address, Card, Prompt
from bot.survey.texts import primary_language

MAX_TEXT = 4096
MAX_ALERT = 200
MAX_NAME = 64

Keyboard = tuple[tuple[tuple[str, str], ...], ...]  # rows of (label, callback_data)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def fit(text: str, limit: int) -> str:
    """``text`` within ``limit`` UTF-16 units; a cut ends with "…" (never splits a character)."""
    if utf16_len(text) <= limit:
        return text
    kept: list[str] = []
    used = 1  # room for the ellipsis
    for char in text:
        width = 2 if ord(char) > 0xFFFF else 1
        if used + width > limit:
            break
        kept.append(char)
        used += width
    return "".join(kept).rstrip() + "…"


def addressee(prompt: Prompt | None, address: Address) -> str | None:
    """The name a message in a group starts with: the prompt's mention, else (thanks, notices)
    the session's customer. None in a private chat."""
    name = prompt.mention if prompt is not None and prompt.mention else None
    if name is None and address.chat_id is not None:
        name = address.user_name
    return fit(name.strip(), MAX_NAME) if name and name.strip() else None


@dataclass(frozen=True)
class Rendered:
    html: str  # parse_mode HTML
    keyboard: Keyboard


def render_prompt(prompt: Prompt, address: Address) -> Rendered:
    """Hint (if any) above the question; in a group the customer's name (a mention that
    notifies them) opens the text: "Anna, Were you satisfied …"."""
    name = addressee(prompt, address)
    prefix = f"{name}, " if name else ""
    hint = fit(prompt.hint.strip(), MAX_TEXT // 2) if prompt.hint and prompt.hint.strip() else ""
    head = f"{hint}\n\n" if hint else ""
    body = fit(prompt.text, MAX_TEXT - utf16_len(head) - utf16_len(prefix))
    mention = ""
    if name:
        escaped = html.escape(name, quote=False)
        mention = (
            f'<a href="tg://user?id={address.user_id}">{escaped}</a>, '
            if address.user_id.isdigit()
            else f"{escaped}, "
        )
    text = f"{html.escape(head, quote=False)}{mention}{html.escape(body, quote=False)}"
    rows = (*prompt.rows, (prompt.skip,)) if prompt.skip is not None else prompt.rows
    keyboard = tuple(
        tuple((button.label.strip() or button.payload, button.payload) for button in row)
        for row in rows
        if row
    )
    return Rendered(html=text, keyboard=keyboard)


def render_card(card: Card) -> Rendered:
    """A staff card: the title in bold, then its lines, then its buttons in rows."""
    body = fit("\n".join(card.lines), MAX_TEXT - utf16_len(card.title) - 2)
    text = f"<b>{html.escape(card.title, quote=False)}</b>\n{html.escape(body, quote=False)}"
    keyboard = tuple(tuple((b.label, b.payload) for b in row) for row in card.rows if row)
    return Rendered(html=text, keyboard=keyboard)


def settled_text(text: str, name: str | None) -> str:
    """The tapped message after the answer: the question and the choice, plain text."""
    return fit(f"{name}, {text}" if name else text, MAX_TEXT)


def alert_text(notice: str) -> str:
    return fit(notice, MAX_ALERT)


# ---- what the bot says around surveys ------------------------------------------------------
TEXTS: dict[str, dict[str, str]] = {
    "welcome": {
        "en": "Hello! Open the survey link you received to begin.",
        "el": "Γεια σας! Ανοίξτε τον σύνδεσμο της έρευνας που λάβατε για να ξεκινήσετε.",
        "lt": "Sveiki! Norėdami pradėti, atidarykite gautą apklausos nuorodą.",
    },
    "link_invalid": {
        "en": "This survey link is not valid or has already been used.",
        "el": "Αυτός ο σύνδεσμος έρευνας δεν είναι έγκυρος ή έχει ήδη χρησιμοποιηθεί.",
        "lt": "Ši apklausos nuoroda negalioja arba jau buvo panaudota.",
    },
    "usage_group": {
        "en": "Reply to the customer's message with /survey <flow> [key=value ...]. "
        "Surveys: {flows}.",
        "el": "Απαντήστε στο μήνυμα του πελάτη με /survey <flow> [key=value ...]. "
        "Έρευνες: {flows}.",
        "lt": "Atsakykite į kliento žinutę komanda /survey <flow> [key=value ...]. "
        "Apklausos: {flows}.",
    },
    "usage_private": {
        "en": "Usage: /survey <flow> <user id> [key=value ...] — or reply to the customer's "
        "message in a group with /survey <flow>. Surveys: {flows}.",
        "el": "Χρήση: /survey <flow> <user id> [key=value ...] — ή απαντήστε στο μήνυμα του "
        "πελάτη σε μια ομάδα με /survey <flow>. Έρευνες: {flows}.",
        "lt": "Naudojimas: /survey <flow> <user id> [key=value ...] — arba grupėje atsakykite "
        "į kliento žinutę komanda /survey <flow>. Apklausos: {flows}.",
    },
    "bad_context": {
        "en": "Could not read “{item}”: extra values are written key=value (at most {max}).",
        "el": "Δεν ήταν δυνατή η ανάγνωση του «{item}»: οι επιπλέον τιμές γράφονται "
        "key=value (έως {max}).",
        "lt": "Nepavyko perskaityti „{item}“: papildomos reikšmės rašomos key=value "
        "(ne daugiau kaip {max}).",
    },
    "invite": {
        "en": "I can't write to {who}: they have not started a chat with me (or blocked me). "
        "Send them this link, it starts “{flow}” once: {link}",
        "el": "Δεν μπορώ να γράψω στον/στην {who}: δεν έχει ξεκινήσει συνομιλία μαζί μου "
        "(ή με έχει αποκλείσει). Στείλτε του/της αυτόν τον σύνδεσμο, ξεκινά την έρευνα "
        "«{flow}» μία φορά: {link}",
        "lt": "Negaliu parašyti {who}: šis žmogus dar nepradėjo pokalbio su manimi (arba "
        "mane užblokavo). Nusiųskite šią nuorodą, ji vieną kartą pradeda „{flow}“: {link}",
    },
    "help": {
        "en": "I ask short surveys about our support. Answer with the buttons or by typing; "
        "/skip skips an optional question.",
        "el": "Κάνω σύντομες έρευνες για την εξυπηρέτησή μας. Απαντήστε με τα κουμπιά ή "
        "γράφοντας· το /skip παραλείπει μια προαιρετική ερώτηση.",
        "lt": "Užduodu trumpus klausimus apie mūsų pagalbą. Atsakykite mygtukais arba "
        "parašydami; /skip praleidžia neprivalomą klausimą.",
    },
}

COMMANDS: dict[str, tuple[tuple[str, str], ...]] = {
    "en": (
        ("start", "Start a survey from a link"),
        ("skip", "Skip an optional question"),
        ("survey", "Support staff: send a survey"),
        ("help", "What this bot does"),
    ),
    "el": (
        ("start", "Έναρξη έρευνας από σύνδεσμο"),
        ("skip", "Παράλειψη προαιρετικής ερώτησης"),
        ("survey", "Ομάδα υποστήριξης: αποστολή έρευνας"),
        ("help", "Τι κάνει αυτό το bot"),
    ),
    "lt": (
        ("start", "Pradėti apklausą iš nuorodos"),
        ("skip", "Praleisti neprivalomą klausimą"),
        ("survey", "Pagalbos komanda: siųsti apklausą"),
        ("help", "Ką daro šis botas"),
    ),
}


def language(code: str | None) -> str:
    primary = primary_language(code)
    return primary if primary in COMMANDS else "en"


def say(key: str, lang: str | None, **params: object) -> str:
    table = TEXTS[key]
    template = table.get(language(lang), table["en"])
    return template.format_map({k: str(v) for k, v in params.items()})


def invite_link(bot_username: str, token: str) -> str:
    return f"https://t.me/{bot_username.lstrip('@')}?start={token}"
