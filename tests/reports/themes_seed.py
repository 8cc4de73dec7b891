"""Customers who complain about waiting and praise friendly help, in English, Greek and
Lithuanian: the comments whose themes the report and the dashboard must find."""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.support.report_seed import Visit

COMPLAINTS = {
    "en": ["So slow, I waited two hours", "Waited forever, very slow",
           "Slow answers and I waited a day", "I waited and nothing happened"],
    "el": ["Περίμενα 40 λεπτά", "Πολύ αργά, περίμενα είκοσι λεπτά",
           "Έχασα λεπτά και λεπτά στην αναμονή", "Τριάντα λεπτά αναμονή"],
    "lt": ["Laukiau visą valandą", "Laukiau per ilgai", "Labai ilgai laukiau atsakymo",
           "Laukiau dvi dienas"],
}  # fmt: skip
PRAISE = {
    "en": ["Friendly and helpful agent", "Very helpful, thank you", "Friendly people",
           "Helpful and quick"],
    "el": ["Ο υπάλληλος ήταν ευγενικός", "Πολύ ευγενικός και πρόθυμος",
           "Ευγενικός και γρήγορος", "Ευχαριστώ, ευγενικός άνθρωπος"],
    "lt": ["Malonus aptarnavimas", "Labai malonus konsultantas", "Malonus ir greitas",
           "Ačiū, malonus žmogus"],
}  # fmt: skip
# what the themes must say, per language: (the complaint's word, the praise's word)
WORDS = {"en": (["slow", "waited"], ["friendly", "helpful"]), "el": (["λεπτά"], ["ευγενικός"]),
         "lt": (["laukiau"], ["malonus"])}  # fmt: skip


def complaints_and_praise(
    start: datetime, flow: str = "nps", between: tuple[str, ...] = ()
) -> list[Visit]:
    """NPS surveys on Telegram from ``start``, an hour apart: every complaint four times from
    a detractor (scores 0–6), every praise four times from a promoter (9–10), in its
    language: 96 surveys. ``between`` are replies to questions between the score and the
    comment (of another ``flow`` than the shipped NPS one)."""
    visits = []
    for lang in ("en", "el", "lt"):
        for round_ in range(4):
            for i, (bad, good) in enumerate(zip(COMPLAINTS[lang], PRAISE[lang], strict=True)):
                low, high = str((i + 2 * round_) % 7), str(9 + round_ % 2)
                visits.append(Visit(flow, "telegram", "ann", lang, start, (low, *between, bad)))
                visits.append(Visit(flow, "telegram", "bob", lang, start, (high, *between, good)))
    return [
        Visit(v.flow, v.platform, v.agent, v.locale, start + timedelta(hours=i), v.replies)
        for i, v in enumerate(visits)
    ]
