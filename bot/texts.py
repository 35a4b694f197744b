"""How an expert's answer reads for the officer, in every channel (Dutch)."""

from __future__ import annotations

from escalation.attachments import ALLOWED_NL, MAX_ATTACHMENT_BYTES, MAX_ATTACHMENTS
from escalation.delivery import ExpertAnswer

EXPERT_HEADING = "Antwoord van de expertenpool"
"""What an expert's answer starts with (a Teams card puts it in its header instead)."""


def expert_answer_text(answer: ExpertAnswer, *, heading: bool = True) -> str:
    """The whole message: which question it answers, the answer, who answered, what to do next. Without
    ``heading`` the first words ("Antwoord van de expertenpool") are left to the channel's own header."""
    if answer.wording is not None:  # queued by an older version, worded then
        return answer.wording if heading else _under_heading(answer.wording)
    start = " ".join(answer.question.split())
    start = start if len(start) <= 80 else start[:80].rsplit(" ", 1)[0] + " …"
    intro = (f"{EXPERT_HEADING} op je vraag {answer.tag} (\"{start}\"):" if heading
             else f"Op je vraag {answer.tag} (\"{start}\"):")
    body = answer.answer
    if answer.truncated:
        body += (f" …\n\n(Het antwoord is ingekort: het is langer dan dit bericht toelaat. Vraag de helpdesk naar "
                 f"het volledige antwoord bij {answer.tag}.)")
    note = ""
    if answer.refused:
        names = ", ".join(answer.refused[:MAX_ATTACHMENTS])
        note = (f"De expert stuurde ook {names} mee. Dat geeft de helpdesk niet door: ze geeft alleen bestanden door "
                f"die ze veilig weet ({ALLOWED_NL}, zonder macro's, tot {MAX_ATTACHMENT_BYTES // (1024 * 1024)} MB "
                f"per bestand en {MAX_ATTACHMENTS} per antwoord). Vraag de beheerder van de helpdesk ernaar bij "
                f"{answer.tag}.\n\n")
    return (f"{intro}\n\n{body}\n\n— {answer.expert or 'de expertenpool'}\n\n{note}"
            f"Is je vraag hiermee beantwoord? Typ /opgelost {answer.ticket}. Heb je nog een vervolgvraag voor "
            f"dezelfde expert? Typ /vervolg {answer.ticket} gevolgd door je vraag.")


def _under_heading(text: str) -> str:
    """An older worded answer without its leading heading: "Antwoord van de expertenpool op je vraag VB-1 (...):"
    becomes "Op je vraag VB-1 (...):"."""
    first, newline, rest = text.lstrip().partition("\n")
    if not first.startswith(EXPERT_HEADING):
        return text
    tail = first[len(EXPERT_HEADING):].strip()
    if not tail.strip(" :"):
        return rest
    return tail[0].upper() + tail[1:] + newline + rest
