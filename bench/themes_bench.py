"""Comment themes on 100,000 comments: prints comments per second (goal: all in under 10 s on
the 2-core machine). Not a test: a figure to read.

The comments are generated from a vocabulary of a few hundred words per language (en, el, lt),
a third each, detractors and promoters with their own typical words plus shared filler, like a
support inbox. The first call loads simplemma's dictionaries for the three languages; the
figure is printed with and without that one-time cost.

    python bench/themes_bench.py [--comments 100000]
"""

from __future__ import annotations

import argparse
import random
import time

from bot.reports.themes import CommentIn, _Lemmatizer, themes

FILLER = {
    "en": "the agent answered my question about the invoice and the account after the call "
    "today yesterday ticket order delivery refund password login app website email phone",
    "el": "ο υπάλληλος απάντησε στην ερώτηση μου για τον λογαριασμό και την παραγγελία μετά "
    "την κλήση σήμερα χθες αίτημα επιστροφή κωδικός εφαρμογή ιστοσελίδα τηλέφωνο",
    "lt": "konsultantas atsakė į mano klausimą apie sąskaitą ir užsakymą po skambučio šiandien "
    "vakar prašymas grąžinimas slaptažodis programa svetainė paštas telefonas",
}
NEGATIVE = {
    "en": "slow waited waiting hours rude unhelpful never again nobody answered late broken",
    "el": "αργά περίμενα λεπτά ώρες αγενής κανείς δεν απάντησε καθυστέρηση χάλια",
    "lt": "lėtai laukiau valandą ilgai nemandagus niekas neatsakė vėlavo blogai",
}
POSITIVE = {
    "en": "friendly helpful quick fast kind great solved thanks polite patient",
    "el": "ευγενικός εξυπηρετικός γρήγορα γρήγορη ευχαριστώ άψογη λύθηκε υπομονετικός",
    "lt": "malonus paslaugus greitai greitas ačiū puikiai išsprendė kantrus mandagus",
}


def comments(count: int, seed: int = 7) -> list[CommentIn]:
    rng = random.Random(seed)
    words = {k: {lang: v.split() for lang, v in d.items()}
             for k, d in (("filler", FILLER), ("neg", NEGATIVE), ("pos", POSITIVE))}  # fmt: skip
    out = []
    for i in range(count):
        lang = ("en", "el", "lt")[i % 3]
        score = rng.randint(0, 10)
        own = "neg" if score <= 6 else "pos" if score >= 9 else "filler"
        text = rng.choices(words["filler"][lang], k=rng.randint(4, 12))
        text += rng.choices(words[own][lang], k=rng.randint(1, 3))
        rng.shuffle(text)
        out.append(CommentIn("nps", " ".join(text).capitalize() + ".", lang, "nps", score, 0, 10))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comments", type=int, default=100_000)
    args = parser.parse_args()
    data = comments(args.comments)
    start = time.perf_counter()
    for lang in ("en", "el", "lt"):  # load the dictionaries once, timed apart
        _Lemmatizer().lemma(lang, "warmup")
    loaded = time.perf_counter()
    found = themes(data)
    done = time.perf_counter()
    words = sum(len(c.text.split()) for c in data)
    print(f"{len(data):,} comments ({words:,} words) in {done - start:.2f} s including "
          f"{loaded - start:.2f} s loading simplemma's en/el/lt dictionaries")  # fmt: skip
    print(f"themes: {len(data) / (done - loaded):,.0f} comments/s "
          f"({done - loaded:.2f} s once loaded); goal: 100,000 in under 10 s")  # fmt: skip
    for flow in found:
        print(f"  {flow.negative_name}: " + ", ".join(t.label for t in flow.negative[:6]))
        print(f"  {flow.positive_name}: " + ", ".join(t.label for t in flow.positive[:6]))


if __name__ == "__main__":
    main()
