"""What detractor alerts say to the support team, in every shipped language (the team's
language is set per alert rule, ``alerts.<name>.locale``). Parameters in braces are filled by
:mod:`bot.conversation.alert_view`. Customers never see any of these."""

from __future__ import annotations

from collections.abc import Mapping

from bot.survey.flow import render
from bot.survey.texts import primary_language

ALERT_TEXTS: dict[str, dict[str, str]] = {
    "title": {
        "en": "⚠️ Unhappy customer: {metric} {score}",
        "el": "⚠️ Δυσαρεστημένος πελάτης: {metric} {score}",
        "lt": "⚠️ Nepatenkintas klientas: {metric} {score}",
    },
    "flow": {"en": "Survey: {flow}", "el": "Έρευνα: {flow}", "lt": "Apklausa: {flow}"},
    "customer": {"en": "Customer: {who}", "el": "Πελάτης: {who}", "lt": "Klientas: {who}"},
    "agent": {"en": "Agent: {agent}", "el": "Εκπρόσωπος: {agent}", "lt": "Agentas: {agent}"},
    "ticket": {"en": "Ticket: {ticket}", "el": "Αίτημα: {ticket}", "lt": "Užklausa: {ticket}"},
    "comment": {
        "en": "Comment: “{comment}”",
        "el": "Σχόλιο: «{comment}»",
        "lt": "Komentaras: „{comment}“",
    },
    "no_comment": {
        "en": "No comment (yet).",
        "el": "Κανένα σχόλιο (ακόμη).",
        "lt": "Komentaro (dar) nėra.",
    },
    "open": {
        "en": "Nobody is following up yet.",
        "el": "Κανείς δεν το έχει αναλάβει ακόμη.",
        "lt": "Dar niekas tuo nesirūpina.",
    },
    "owned": {
        "en": "👤 {name} is following up (since {time})",
        "el": "👤 Το έχει αναλάβει: {name} (από {time})",
        "lt": "👤 Tuo rūpinasi {name} (nuo {time})",
    },
    "resolved": {
        "en": "✅ Resolved by {name} ({time})",
        "el": "✅ Επιλύθηκε από: {name} ({time})",
        "lt": "✅ Išsprendė {name} ({time})",
    },
    "note": {"en": "Note: {note}", "el": "Σημείωση: {note}", "lt": "Pastaba: {note}"},
    "note_hint_telegram": {
        "en": "To add a note, reply to this alert.",
        "el": "Για να προσθέσετε σημείωση, απαντήστε σε αυτή την ειδοποίηση.",
        "lt": "Norėdami pridėti pastabą, atsakykite į šį įspėjimą.",
    },
    "note_hint_slack": {
        "en": "To add a note, reply in this alert's thread.",
        "el": "Για να προσθέσετε σημείωση, απαντήστε στο νήμα αυτής της ειδοποίησης.",
        "lt": "Norėdami pridėti pastabą, atsakykite šio įspėjimo gijoje.",
    },
    "own_button": {"en": "I'll follow up", "el": "Το αναλαμβάνω", "lt": "Pasirūpinsiu"},
    "done_button": {"en": "Resolved", "el": "Επιλύθηκε", "lt": "Išspręsta"},
    # to the person who pressed a button, in their own language
    "not_staff": {
        "en": "Only the support team can follow up on alerts. If that should include you, ask "
        "an admin to add your {platform} ID {id} to staff.{key} in config.yaml.",
        "el": "Μόνο η ομάδα υποστήριξης μπορεί να χειριστεί τις ειδοποιήσεις. Αν πρέπει να "
        "είστε σε αυτήν, ζητήστε από έναν διαχειριστή να προσθέσει το αναγνωριστικό σας στο "
        "{platform} ({id}) στο staff.{key} του config.yaml.",
        "lt": "Į įspėjimus reaguoti gali tik pagalbos komanda. Jei turėtumėte joje būti, "
        "paprašykite administratoriaus įrašyti jūsų {platform} ID {id} į staff.{key} faile "
        "config.yaml.",
    },
    "taken": {
        "en": "{name} is already following this up.",
        "el": "Το έχει ήδη αναλάβει: {name}.",
        "lt": "Tuo jau rūpinasi {name}.",
    },
    "already_resolved": {
        "en": "This was already resolved by {name}.",
        "el": "Αυτό έχει ήδη επιλυθεί από: {name}.",
        "lt": "Tai jau išsprendė {name}.",
    },
    "invalid": {
        "en": "This button is not valid any more.",
        "el": "Αυτό το κουμπί δεν ισχύει πια.",
        "lt": "Šis mygtukas nebegalioja.",
    },
    "noted": {
        "en": "Note saved on the alert.",
        "el": "Η σημείωση αποθηκεύτηκε στην ειδοποίηση.",
        "lt": "Pastaba išsaugota įspėjime.",
    },
}
METRICS = {"nps": "NPS", "csat": "CSAT", "ces": "CES"}


def alert_text(key: str, language: str | None, params: Mapping[str, object] | None = None) -> str:
    """A text of ALERT_TEXTS in ``language`` ("el", or a platform's "el-GR"), else English."""
    table = ALERT_TEXTS[key]
    template = table.get(primary_language(language)) or table["en"]
    return render(template, {k: str(v) for k, v in (params or {}).items()})
