"""Every Dutch text an officer reads, in one place: the core's help, next steps and refusals, each channel's welcome,
errors and command list, the rate and ticket limits, the ticket states, and how an expert's answer reads.

Sentences built around a ticket's data (its number, its expert) are still worded where they are built
(``bot/escalator.py``, ``bot/core.py``). Kept free of heavy imports: every channel and ``vraagbaak --help`` load it.
"""

from __future__ import annotations

from escalation.attachments import ALLOWED_NL, MAX_ATTACHMENT_BYTES, MAX_ATTACHMENTS
from escalation.delivery import ExpertAnswer

# -- the core (bot/core.py) ----------------------------------------------------------------------------------------

NEXT_STEP_ANSWER = ("Was dit nuttig? Geef 👍 of 👎. Twijfel je nog, typ dan /expert en ik leg je vraag voor aan "
                    "de expertenpool.")
NEXT_STEP_EXPERT_OFFER = "Typ /expert als je je vraag aan de expertenpool wilt voorleggen."
NO_ANSWER_OFF_TOPIC = (
    "Daarover vind ik niets in mijn bronnen: ik ken alleen regels en richtlijnen over "
    "overheidsopdrachten, met de nadruk op innovatieve procedures. Gaat je vraag toch over een "
    "overheidsopdracht, formuleer ze dan anders.")
NO_ANSWER_NO_SOURCE = (
    "Dat vind ik niet in mijn bronnen: geen van de teksten die ik ken beantwoordt deze vraag, "
    "en ik wil je geen passage geven die er alleen op lijkt. De expertenpool kan je wel verder "
    "helpen.")
"""What the officer reads when no source answers: off-topic, or a procurement question the corpus does not cover
(each followed by NEXT_STEP_EXPERT_OFFER)."""
OWN_CASE_LABEL = "je eigen dossier of een concreet geschil"
"""How the reply names an own-case question that no precise rule labelled more exactly."""
HELP_TEXT = (
    "Ik ben Vraagbaak, de eerstelijnshelpdesk voor innovatieve overheidsopdrachten (PCP, innovatiepartnerschap, "
    "concurrentiegerichte dialoog, onderhandelingsprocedures, marktconsultatie, drempels).\n"
    "Stel je vraag gewoon in een zin. Ik antwoord met passages uit wetgeving en richtlijnen, en ik vermeld altijd "
    "de bron. Ik geef geen juridisch advies over een concreet geschil: zulke vragen leg ik voor aan de expertenpool.\n"
    "Opdrachten: /expert (vraag een expert), /status (mijn vragen aan experts), /opgelost N, /vervolg N en "
    "/bijlagen N (bij een antwoord van een expert), /reset (nieuw gesprek), /help."
)
BUTTON_GONE = "Deze knop werkt niet meer. Stel je vraag gerust opnieuw."
COLLEAGUES_BUTTON = ("Die knop hoort bij de vraag van een collega: ik leg ze niet in jouw naam voor. Wil je zelf "
                     "een expert raadplegen, typ dan /expert gevolgd door je vraag.")
STATUS_IN_PRIVATE = ("Je vragen aan de expertenpool toon ik niet in een groepsgesprek. Stuur /status in een "
                     "privégesprek met mij, dan krijg je het overzicht.")
TICKETS_LIMITED = (
    "Je legde het afgelopen uur al {limit} vragen of vervolgvragen voor aan de expertenpool. Om de experts niet te "
    "overspoelen neem ik nu geen nieuwe vraag aan: probeer het over een uur opnieuw.")
FOLLOW_UPS_LIMITED = (
    "Je legde het afgelopen uur al {limit} vragen of vervolgvragen voor aan de expertenpool. Om de experts niet te "
    "overspoelen stuur ik deze vervolgvraag nu niet door: probeer het over een uur opnieuw.")

# -- every channel's message limit (bot/runtime.py) ----------------------------------------------------------------

RATE_LIMITED = ("Je stuurt veel berichten kort na elkaar. Wacht even en probeer het over een minuut opnieuw; "
                "je vorige vragen zijn wel verwerkt.")
"""What an officer hears, once, when they go over a channel's message limit."""

# -- tickets (bot/escalator.py) ------------------------------------------------------------------------------------

STATE_NL = {"open": "wacht op verzending", "sent": "bij een expert", "answered": "beantwoord", "closed": "afgesloten",
            "reopened": "vervolgvraag bij een expert"}
"""How /status names a ticket's state."""

# -- Telegram (bot/channels/telegram.py) ---------------------------------------------------------------------------

TELEGRAM_WELCOME = (
    "Welkom bij Vraagbaak, de helpdesk voor innovatieve overheidsopdrachten.\n\n"
    "Wat ik kan: je vragen over precommercieel aankopen (PCP), het innovatiepartnerschap, de "
    "concurrentiegerichte dialoog, onderhandelingsprocedures, marktconsultatie en drempelbedragen beantwoorden "
    "met passages uit wetgeving en richtlijnen, altijd met de bron erbij. Twijfel ik, of vraag je het, dan leg "
    "ik je vraag voor aan de expertenpool; hun antwoord krijg je hier in dit gesprek.\n\n"
    "Wat ik niet kan: juridisch advies geven over een concreet geschil, bijlagen of foto's lezen, of beslissen "
    "in jouw plaats.\n\n"
    "Privacy: ik bewaar je vragen en mijn antwoorden in een logboek om de helpdesk te verbeteren, met je "
    "Telegram-id alleen als pseudoniem, en wis ze na de bewaartermijn. Vraag je een expert, dan krijgt die je vraag "
    "en je naam per mail. Zet geen persoonsgegevens of vertrouwelijke dossierinformatie in je vragen.\n\n"
    "Stel je vraag gewoon in een zin. Opdrachten: /help, /expert, /status, /reset. In een groep antwoord ik alleen "
    "als je mij noemt ({mention}) of op een bericht van mij antwoordt."
)
WELCOME_INVITED = "Je uitnodiging is aanvaard: je kunt Vraagbaak vanaf nu gebruiken.\n\n"
REFUSAL = (
    "Sorry, Vraagbaak is alleen beschikbaar voor medewerkers die de beheerder van de helpdesk heeft toegelaten. "
    "Kreeg je een uitnodigingslink? Open die dan opnieuw. Anders kun je toegang vragen aan de beheerder; geef dan "
    "je Telegram-nummer door: {user_id}."
)
INVITE_INVALID = ("Deze uitnodiging is niet (meer) geldig: ze is al gebruikt of verlopen. Vraag de beheerder van "
                  "de helpdesk om een nieuwe link.")
REFUSAL_BUTTON = "Sorry, je hebt (nog) geen toegang tot Vraagbaak."
ERROR_TEXT = ("Sorry, er ging iets mis bij het verwerken van je bericht. Probeer het straks opnieuw; lukt het dan "
              "nog niet, meld het aan de beheerder van de helpdesk.")
TEXT_ONLY = "Ik kan alleen tekstberichten lezen. Typ je vraag gewoon in een zin."
EXPERT_BUTTON_ACK = "Ik leg je vraag voor aan de expertenpool."
NOT_YOUR_WALK = "Deze keuzehulp is van een collega. Typ /procedure om je eigen keuzehulp te starten."
TELEGRAM_COMMANDS = [("help", "Wat Vraagbaak kan en welke opdrachten er zijn"),
                     ("expert", "Leg je laatste vraag voor aan de expertenpool"),
                     ("status", "Je vragen bij de expertenpool"),
                     ("procedure", "Welke procedure past? Een keuzehulp in enkele vragen"),
                     ("bijlagen", "De bijlagen van een expert opnieuw, bv. /bijlagen 12"),
                     ("reset", "Begin een nieuw gesprek")]

# -- Teams (bot/channels/teams.py, teams_manifest.py, teams_cards.py) ----------------------------------------------

TEAMS_WELCOME = (
    "Hallo! Ik ben Vraagbaak, de helpdesk voor innovatieve overheidsopdrachten (PCP, "
    "innovatiepartnerschap, concurrentiegerichte dialoog, marktconsultatie, drempels ...). Stel je vraag "
    "gewoon in een zin: ik antwoord met passages uit wetgeving en richtlijnen en vermeld altijd de bron. Onder "
    "een antwoord geef je 👍 of 👎, of leg je de vraag voor aan de expertenpool. Typ /help voor alle "
    "opdrachten.")
WELCOME_GROUP = "In een kanaal of groepsgesprek antwoord ik alleen als je me vermeldt met @{name}."
NOT_TEXT = "Ik kan alleen tekst lezen. Stel je vraag in een zin, of typ /help."
SORRY = ("Sorry, er ging iets mis bij het verwerken van je bericht. Probeer het straks opnieuw; lukt het dan nog "
         "niet, meld het dan aan de beheerder van Vraagbaak.")
TEAMS_COMMANDS = [
    ("/help", "Wat Vraagbaak kan en welke opdrachten er zijn"),
    ("/expert", "Leg je laatste vraag voor aan de expertenpool"),
    ("/status", "Je vragen bij de expertenpool en hun stand"),
    ("/reset", "Begin een nieuw gesprek"),
]
NO_LINK = "een downloadlink kan ik hier niet geven; vraag de beheerder van de helpdesk om het bestand"

# -- the console (bot/channels/console.py) -------------------------------------------------------------------------

CONSOLE_WELCOME = (
    "Welkom bij Vraagbaak, de helpdesk voor innovatieve overheidsopdrachten.\n"
    "Stel je vraag in een zin. Na een antwoord: 👍 of + (nuttig), 👎 of - (niet nuttig), /expert (vraag een "
    "expert), /reset (nieuw gesprek), /help, /stop (afsluiten).")
ANSWER_ARRIVES = "te zien wanneer je de volgende keer `vraagbaak chat` opent"
"""Where an expert's answer reaches a console officer: the console cannot write into a finished `vraagbaak ask`
or a closed chat, so waiting answers are shown when the chat starts (``ConsoleChat.run``)."""

# -- an expert's answer, in every channel --------------------------------------------------------------------------

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
