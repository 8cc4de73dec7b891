"""The language a person wrote in, for people whose platform does not say (a Slack Connect
user from another organisation): an offline detector, py3langid, whose model ships inside its
PyPI wheel; nothing is downloaded at run time.

The model takes about two seconds to load, so it is loaded once, on first use, in a worker
thread. Short or ambiguous texts ("ok", "thanks!", an emoji) give no answer rather than a
guess: below ``MIN_CONFIDENCE`` the caller falls back (a channel setting, the flow's first
locale).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

log = logging.getLogger(__name__)
MIN_CONFIDENCE = 0.5  # probability over the ~97 languages the model knows
MIN_LETTERS = 3  # fewer letters than this is no language at all

_lock = threading.Lock()
_identifier: Any = None


def _load() -> Any:
    global _identifier
    with _lock:
        if _identifier is None:
            from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

            _identifier = LanguageIdentifier.from_modelpath(MODEL_DIR / MODEL_FILE,
                                                            norm_probs=True)  # fmt: skip
        return _identifier


def detect(text: str) -> str | None:
    """The ISO 639-1 code of the language of ``text`` ("el"), or None when unsure."""
    if sum(ch.isalpha() for ch in text) < MIN_LETTERS:
        return None
    language, probability = _load().classify(text)
    if float(probability) < MIN_CONFIDENCE:
        log.debug("language of %r unsure: %s (%.2f)", text[:40], language, probability)
        return None
    return str(language)


async def detect_async(text: str) -> str | None:
    """:func:`detect` without blocking the event loop while the model loads or runs."""
    return await asyncio.to_thread(detect, text)
