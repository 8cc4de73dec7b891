"""Built-in interface strings in every shipped language. A flow may override any key under
``strings:``. Parameters in braces are filled by the caller."""

from __future__ import annotations

from collections.abc import Mapping

from bot.survey.flow import Flow, localize, render

BUILTIN: dict[str, dict[str, str]] = {
    "yes": {"en": "Yes", "el": "Ναι", "lt": "Taip"},
    "no": {"en": "No", "el": "Όχι", "lt": "Ne"},
    "skip": {"en": "Skip", "el": "Παράλειψη", "lt": "Praleisti"},
    "skipped": {"en": "Skipped", "el": "Παραλείφθηκε", "lt": "Praleista"},
    "answered": {
        "en": "Your answer: {answer}",
        "el": "Η απάντησή σας: {answer}",
        "lt": "Jūsų atsakymas: {answer}",
    },
    "hint_yes_no": {
        "en": "Please tap Yes or No, or type yes or no.",
        "el": "Πατήστε «Ναι» ή «Όχι» ή γράψτε ναι ή όχι.",
        "lt": "Paspauskite „Taip“ arba „Ne“ arba parašykite taip arba ne.",
    },
    "hint_scale": {
        "en": "Please choose a number from {min} to {max}.",
        "el": "Επιλέξτε έναν αριθμό από {min} έως {max}.",
        "lt": "Pasirinkite skaičių nuo {min} iki {max}.",
    },
    "hint_choice": {
        "en": "Please tap one of the options or type its number.",
        "el": "Πατήστε μία από τις επιλογές ή γράψτε τον αριθμό της.",
        "lt": "Paspauskite vieną iš atsakymų arba parašykite jo numerį.",
    },
    "hint_text": {
        "en": "Please type your answer.",
        "el": "Γράψτε την απάντησή σας.",
        "lt": "Parašykite savo atsakymą.",
    },
    "hint_too_long": {
        "en": "Please keep your answer under {max_length} characters.",
        "el": "Η απάντησή σας πρέπει να έχει έως {max_length} χαρακτήρες.",
        "lt": "Atsakymas turi būti ne ilgesnis nei {max_length} simbolių.",
    },
    "hint_optional": {
        "en": "Type /skip to skip this question.",
        "el": "Γράψτε /skip για να παραλείψετε αυτή την ερώτηση.",
        "lt": "Parašykite /skip, jei norite praleisti šį klausimą.",
    },
    "hint_required": {
        "en": "This question can't be skipped.",
        "el": "Αυτή η ερώτηση δεν μπορεί να παραλειφθεί.",
        "lt": "Šio klausimo praleisti negalima.",
    },
    "already_answered": {
        "en": "You have already answered this question.",
        "el": "Έχετε ήδη απαντήσει σε αυτή την ερώτηση.",
        "lt": "Į šį klausimą jau atsakėte.",
    },
    "not_for_you": {
        "en": "This survey is for someone else.",
        "el": "Αυτή η έρευνα απευθύνεται σε κάποιον άλλο.",
        "lt": "Ši apklausa skirta kitam žmogui.",
    },
    "not_for_you_named": {
        "en": "This survey is for {name}.",
        "el": "Αυτή η έρευνα απευθύνεται σε: {name}.",
        "lt": "Ši apklausa skirta: {name}.",
    },
    "expired": {
        "en": "This survey has expired. Thank you anyway!",
        "el": "Αυτή η έρευνα έχει λήξει. Σας ευχαριστούμε πάντως!",
        "lt": "Ši apklausa nebegalioja. Vis tiek ačiū!",
    },
    "finished": {
        "en": "You have already completed this survey. Thank you!",
        "el": "Έχετε ήδη ολοκληρώσει αυτή την έρευνα. Σας ευχαριστούμε!",
        "lt": "Šią apklausą jau užpildėte. Ačiū!",
    },
    "invalid_button": {
        "en": "This button is not valid any more.",
        "el": "Αυτό το κουμπί δεν ισχύει πια.",
        "lt": "Šis mygtukas nebegalioja.",
    },
    "thanks": {
        "en": "Thank you for your feedback!",
        "el": "Σας ευχαριστούμε για τα σχόλιά σας!",
        "lt": "Ačiū už jūsų atsiliepimą!",
    },
    "reminder": {
        "en": "A quick reminder: we would love to hear your answer.",
        "el": "Μια μικρή υπενθύμιση: θα θέλαμε πολύ να μάθουμε τη γνώμη σας.",
        "lt": "Primename: labai norėtume sužinoti jūsų nuomonę.",
    },
    "already_told": {
        "en": "You already told us recently. Thank you!",
        "el": "Μας το έχετε ήδη πει πρόσφατα. Σας ευχαριστούμε!",
        "lt": "Jūs mums tai jau neseniai pasakėte. Ačiū!",
    },
    "no_survey": {
        "en": "There is no survey waiting for you right now.",
        "el": "Δεν υπάρχει κάποια έρευνα που να σας περιμένει αυτή τη στιγμή.",
        "lt": "Šiuo metu jūsų nelaukia jokia apklausa.",
    },
}

# What the bot says outside any one flow (so not overridable under a flow's ``strings:``): what
# staff read after asking for a survey on any platform; "unknown_flow" also answers a customer's
# deep link to a flow that is not loaded.
OUTSIDE_FLOWS: dict[str, dict[str, str]] = {
    "not_staff": {
        "en": "Sorry, only our support team can send surveys. If that should include you, ask "
        "an admin to add your {platform} ID {id} to staff.{key} in config.yaml.",
        "el": "Λυπούμαστε, μόνο η ομάδα υποστήριξης μπορεί να στέλνει έρευνες. Αν πρέπει να "
        "είστε σε αυτήν, ζητήστε από έναν διαχειριστή να προσθέσει το αναγνωριστικό σας στο "
        "{platform} ({id}) στο staff.{key} του config.yaml.",
        "lt": "Atsiprašome, apklausas gali siųsti tik mūsų pagalbos komanda. Jei turėtumėte "
        "joje būti, paprašykite administratoriaus įrašyti jūsų {platform} ID {id} į "
        "staff.{key} faile config.yaml.",
    },
    "staff_sent": {
        "en": "Survey “{flow}” sent to {who}.",
        "el": "Η έρευνα «{flow}» στάλθηκε στον/στην {who}.",
        "lt": "Apklausa „{flow}“ išsiųsta: {who}.",
    },
    "staff_queued": {
        "en": "Survey “{flow}” for {who} is queued: {reason}",
        "el": "Η έρευνα «{flow}» για τον/την {who} είναι σε αναμονή: {reason}",
        "lt": "Apklausa „{flow}“ ({who}) laukia eilėje: {reason}",
    },
    "staff_throttled": {
        "en": "Not sent: {reason}",
        "el": "Δεν στάλθηκε: {reason}",
        "lt": "Neišsiųsta: {reason}",
    },
    "staff_failed": {
        "en": "Could not send survey “{flow}” to {who}: {reason}",
        "el": "Η έρευνα «{flow}» δεν στάλθηκε στον/στην {who}: {reason}",
        "lt": "Nepavyko išsiųsti apklausos „{flow}“ ({who}): {reason}",
    },
    "unknown_flow": {
        "en": "There is no survey called “{flow}”. Available surveys: {flows}.",
        "el": "Δεν υπάρχει έρευνα με το όνομα «{flow}». Διαθέσιμες έρευνες: {flows}.",
        "lt": "Apklausos „{flow}“ nėra. Galimos apklausos: {flows}.",
    },
    # staff notes about surveys in Slack support threads ({who} is a mention)
    "thread_sent": {
        "en": "Sent the {flow} survey to {who} in this thread.",
        "el": "Η έρευνα {flow} στάλθηκε σε: {who} σε αυτό το νήμα.",
        "lt": "Apklausa {flow} išsiųsta {who} šioje gijoje.",
    },
    "thread_queued": {
        "en": "The {flow} survey for {who} will be posted in this thread shortly. {reason}",
        "el": "Η έρευνα {flow} για {who} θα δημοσιευτεί σύντομα σε αυτό το νήμα. {reason}",
        "lt": "Apklausa {flow} naudotojui {who} netrukus bus paskelbta šioje gijoje. {reason}",
    },
    "thread_already": {
        "en": "{who} was already asked {flow} in this thread on {when} UTC; nothing new was sent.",
        "el": "Η έρευνα {flow} στάλθηκε ήδη σε: {who} σε αυτό το νήμα στις {when} UTC· δεν "
        "στάλθηκε τίποτα νέο.",
        "lt": "{who} jau buvo paklausta(s) {flow} šioje gijoje {when} UTC; nieko naujo neišsiųsta.",
    },
    "thread_failed": {
        "en": "Could not post the {flow} survey for {who}: {reason}",
        "el": "Δεν ήταν δυνατή η δημοσίευση της έρευνας {flow} για {who}: {reason}",
        "lt": "Nepavyko paskelbti apklausos {flow} naudotojui {who}: {reason}",
    },
    "thread_no_customer": {
        "en": "There is no customer to ask here: this thread was started by a bot or by you.",
        "el": "Δεν υπάρχει πελάτης να ερωτηθεί: αυτό το νήμα ξεκίνησε από bot ή από εσάς.",
        "lt": "Čia nėra kliento, kurio galima paklausti: šią giją pradėjo botas arba jūs.",
    },
    "thread_unreadable": {
        "en": "I cannot read this thread ({reason}): invite the bot to the channel.",
        "el": "Δεν μπορώ να διαβάσω αυτό το νήμα ({reason}): προσκαλέστε το bot στο κανάλι.",
        "lt": "Negaliu perskaityti šios gijos ({reason}): pakvieskite botą į kanalą.",
    },
    "thread_unknown_flow": {
        "en": "This channel's survey {flow} is not loaded. Available: {flows}.",
        "el": "Η έρευνα {flow} αυτού του καναλιού δεν έχει φορτωθεί. Διαθέσιμες: {flows}.",
        "lt": "Šio kanalo apklausa {flow} neįkelta. Galimos: {flows}.",
    },
    "thread_staff_only": {
        "en": "Sorry, only support staff can send surveys. If that should include you, ask an "
        "admin to add your member ID {id} to staff.slack in config.yaml.",
        "el": "Λυπούμαστε, μόνο το προσωπικό υποστήριξης μπορεί να στέλνει έρευνες. Αν "
        "πρέπει να μπορείτε κι εσείς, ζητήστε από έναν διαχειριστή να προσθέσει το αναγνωριστικό "
        "σας {id} στο staff.slack του config.yaml.",
        "lt": "Atsiprašome, apklausas gali siųsti tik palaikymo komanda. Jei tai turėtų apimti "
        "ir jus, paprašykite administratoriaus įrašyti jūsų nario ID {id} į staff.slack "
        "faile config.yaml.",
    },
}

# Words a customer may type for yes/no, in any shipped language (matched case-insensitively).
YES_WORDS = frozenset({"yes", "y", "yeah", "yep", "ναι", "ναί", "nai", "taip", "t"})
NO_WORDS = frozenset({"no", "n", "nope", "όχι", "οχι", "oxi", "ochi", "ne"})


def primary_language(code: str | None) -> str:
    """The primary subtag of a platform's language code: "el-GR" and "el_GR" -> "el"; English
    when there is none. Whether the survey has that language is the caller's question."""
    return (code or "en").replace("_", "-").split("-")[0].lower() or "en"


def text_for(
    key: str, locale: str, flow: Flow | None = None, params: Mapping[str, object] | None = None
) -> str:
    """An interface string in ``locale``: the flow's override, else the built-in, else English."""
    fallback = flow.fallback if flow else "en"
    if flow is not None and key in flow.strings:
        template = localize(flow.strings[key], locale, fallback)
    else:
        builtin = BUILTIN[key]
        template = builtin.get(locale) or builtin.get(fallback) or builtin["en"]
    return render(template, {k: str(v) for k, v in (params or {}).items()})


def outside_text(key: str, language: str | None, params: Mapping[str, object]) -> str:
    """A text of OUTSIDE_FLOWS in ``language`` (a platform's code such as "el-GR"), else
    English."""
    table = OUTSIDE_FLOWS[key]
    template = table.get(primary_language(language)) or table["en"]
    return render(template, {k: str(v) for k, v in params.items()})
