"""The NPS bot a Python developer would write instead of surveybot: python-telegram-bot v22's
ConversationHandler with PicklePersistence, polling, written the way the library's examples
(conversationbot.py, persistentconversationbot.py, inlinekeyboard.py) show.

/start asks the 0–10 question with an inline keyboard (two rows); a tap is answered, the
question is edited to show the choice and the follow-up question is sent; the typed comment is
stored and thanked for. The texts are those of flows/nps.yaml (English), so the customer sees
the same conversation as with surveybot and the benchmark counts the same calls:
3 sendMessage + 1 editMessageText + 1 answerCallbackQuery per completed survey.

What it does not do (and surveybot does): it writes its pickle every 60 s (PTB's default
``update_interval``) and at shutdown, so a crash loses up to a minute of answers; it applies no
Telegram rate limits; it speaks one language; it handles one update at a time (PTB's default).

    python bench/baseline_bot.py --token TOKEN --base-url http://127.0.0.1:PORT/bot \
        --data /tmp/nps.pickle
"""

from __future__ import annotations

import argparse
import logging

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    PicklePersistence,
    filters,
)

logging.basicConfig(
    format="%(asctime)s - %(name)s - %(levelname)s - %(message)s", level=logging.INFO
)
logging.getLogger("httpx").setLevel(logging.WARNING)
logger = logging.getLogger(__name__)

SCORE, COMMENT = range(2)

QUESTION = "How likely are you to recommend us to a friend or colleague?"
FOLLOW_UP = {
    "detractor": "Thank you for your honesty. What disappointed you, and what should we do better?",
    "passive": "What would make you rate us higher?",
    "promoter": "We're glad to hear it! What did you like most?",
}
THANKS = "Thank you for taking the time to answer!"


def group(score: int) -> str:
    return "detractor" if score <= 6 else "passive" if score <= 8 else "promoter"


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    """Ask the NPS question."""
    keyboard = [
        [InlineKeyboardButton(str(n), callback_data=str(n)) for n in range(0, 6)],
        [InlineKeyboardButton(str(n), callback_data=str(n)) for n in range(6, 11)],
    ]
    assert update.message is not None
    await update.message.reply_text(QUESTION, reply_markup=InlineKeyboardMarkup(keyboard))
    return SCORE


async def score(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    """Store the score, show it in place of the keyboard and ask why."""
    query = update.callback_query
    assert query is not None and query.data is not None and context.user_data is not None
    await query.answer()
    value = int(query.data)
    context.user_data["score"] = value
    await query.edit_message_text(f"{QUESTION}\n\nYour answer: {value}")
    assert update.effective_chat is not None
    await context.bot.send_message(update.effective_chat.id, FOLLOW_UP[group(value)])
    return COMMENT


async def comment(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    """Store the comment with the score and thank the customer."""
    assert update.message is not None and update.effective_user is not None
    assert context.user_data is not None
    answers = context.bot_data.setdefault("answers", [])
    answers.append(
        {
            "user_id": update.effective_user.id,
            "score": context.user_data["score"],
            "comment": update.message.text,
        }
    )
    logger.info("answer from %s: %s", update.effective_user.id, context.user_data["score"])
    await update.message.reply_text(THANKS)
    return ConversationHandler.END


async def cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    assert update.message is not None
    await update.message.reply_text("Survey cancelled.")
    return ConversationHandler.END


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--token", required=True)
    parser.add_argument("--base-url", default="https://api.telegram.org/bot")
    parser.add_argument("--data", default="nps_bot.pickle", help="PicklePersistence file")
    args = parser.parse_args()

    persistence = PicklePersistence(filepath=args.data)
    application = (
        Application.builder()
        .token(args.token)
        .base_url(args.base_url)
        .persistence(persistence)
        .build()
    )
    conv_handler = ConversationHandler(
        entry_points=[CommandHandler("start", start)],
        states={
            SCORE: [CallbackQueryHandler(score, pattern=r"^(10|[0-9])$")],
            COMMENT: [MessageHandler(filters.TEXT & ~filters.COMMAND, comment)],
        },
        fallbacks=[CommandHandler("cancel", cancel)],
        name="nps",
        persistent=True,
        allow_reentry=True,
    )
    application.add_handler(conv_handler)
    application.run_polling(allowed_updates=Update.ALL_TYPES)


if __name__ == "__main__":
    main()
