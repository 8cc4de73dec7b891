"""Short curated stop-word lists for the comment themes (the flows' languages: en, el, lt).

Function words only: articles, pronouns, prepositions, conjunctions, auxiliaries, particles
and the commonest adverbs. Words that carry a complaint or praise ("slow", "αργά", "lėtai")
are never here. A token is dropped when it, or its lemma, is in its language's list.
Negations are kept apart (:data:`NEGATIONS`): no theme on their own, but they start
two-word phrases ("not helpful", "δεν απάντησαν", "ne laiku").

Lists: 'ours, made for short support comments. The packaged alternatives were wrong for
these languages (a Lithuanian list with mangled letters, a Greek one without accents that
lists "αργά", slow, as a stop word).
"""

from __future__ import annotations

EN = frozenset(
    """a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each few
    for from further get got had has have having he her here hers herself him himself his how
    i i'd i'll i'm i've if in into is it it's its itself just me more most my myself now of
    off on once only or other our ours ourselves out over own same she should so some such
    than that that's the their theirs them themselves then there there's these they they're
    this those through to too under until up us very was we we're were what when where which
    while who whom why will with would you you're your yours yourself yourselves s t ll ve re
    d m really much even still one""".split()
)
EL = frozenset(
    """ο η το οι τα του της των τον την τη τους τις ένας ένα μια μία ενός μιας και κι ή
    αλλά όμως ότι πως που πού να θα ας με σε στο στη στην στον στα στους στις στης στου από
    για προς κατά μετά ως έως μέχρι αν όταν ενώ επειδή γιατί αφού είμαι είσαι είναι είμαστε
    είστε ήταν ήμουν ήσουν ήμασταν έχω έχεις έχει έχουμε έχετε έχουν είχα είχε είχαμε εγώ
    εσύ αυτός αυτή αυτό εμείς εσείς αυτοί αυτές αυτά αυτόν αυτήν αυτού αυτής μου σου μας σας
    πολύ πιο λίγο ήδη ακόμα ακόμη εδώ εκεί τώρα έτσι όλα όλοι όλες όλο κάθε κάτι ποιος ποια
    ποιο τι ναι λοιπόν μόνο επίσης οποίος οποία οποίο τόσο πάρα εμένα εσένα""".split()
)
LT = frozenset(
    """ir bet o ar kad jog nes tai tas ta tie tos to tą tuo šis ši šie šios šio šį šią aš tu
    jis ji mes jūs jie jos mane man mano tave tau tavo jį jam jo ją jai mus mums mūsų jus jums
    jūsų juos jiems joms jų save sau savo yra buvo bus būti esu esi esame esate buvau buvome
    būtų labai per su be į iš ant prie po nuo apie už pas tarp dėl iki kaip kai kur kada kas
    kuris kuri kurie kurios kurį kurią jau dar tik net taip čia ten visi visos viskas visai
    kiek tada todėl nors arba gal vis pat pati patys mūsų""".split()
)
STOP_WORDS: dict[str, frozenset[str]] = {"en": EN, "el": EL, "lt": LT}

NEGATIONS = frozenset(
    """not no never nothing don't didn't doesn't wasn't weren't isn't aren't won't can't
    cannot couldn't wouldn't shouldn't haven't hasn't hadn't dont didnt doesnt wasnt isnt
    cant δεν μην μη όχι ne nėra nebuvo niekas nieko""".split()
)
