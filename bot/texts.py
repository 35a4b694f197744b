"""Every Dutch text an officer reads, in one place: the core's help, next steps and refusals, the replies to commands
and tickets, templates, cases and the procedure choice, download pages, each channel's welcome, errors and command
list, the rate and ticket limits, the ticket states, and how an expert's answer reads.

Fixed sentences are constants; a text built around data (a ticket's number, a source's title) is a small function,
so the modules that build replies hold no Dutch of their own. Kept free of heavy imports: every channel and
``vraagbaak --help`` load it.
"""

from __future__ import annotations

from collections.abc import Sequence

from escalation.attachments import MAX_ATTACHMENT_BYTES, MAX_ATTACHMENTS
from escalation.delivery import ExpertAnswer

# -- buttons (bot/messages.py, bot/channels/teams_cards.py) --------------------------------------------------------

ASK_EXPERT_LABEL = "Vraag een expert"
"""The button under a reply that escalates its question (👍 and 👎 need no words)."""
TOOLTIP_USEFUL = "Dit antwoord was nuttig"
"""A Teams card's tooltip on 👍."""
TOOLTIP_NOT_USEFUL = "Dit antwoord was niet nuttig"
"""A Teams card's tooltip on 👎."""
TOOLTIP_ASK_EXPERT = "Leg deze vraag voor aan de expertenpool"
"""A Teams card's tooltip on the expert button."""

# -- headings and short fragments every channel's rendering shares ---------------------------------------------------

SOURCES_HEADING = "Bronnen"
"""Above the list of citations of an answer."""
FILES_HEADING = "Bestanden"
"""Above the files (templates, an expert's attachments) that come with a reply."""


def link_valid_until(day: str) -> str:
    """After a download link in Teams: until when it works."""
    return f" — link geldig tot {day}"


def citation_date(kind: str, date: str) -> str:
    """How a citation's date is said: a template's version, any other source's "geldig op" date."""
    return f"{'sjabloon, versie van' if kind == 'template' else 'geldig op'} {date}"

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
CLARIFY = (
    "Kun je je vraag wat concreter maken? Vertel bijvoorbeeld over welke procedure of welk type "
    "opdracht het gaat, en wat je wilt weten: \"Wanneer mag ik een innovatiepartnerschap gebruiken?\" "
    "of \"Tot welk bedrag volstaat een aanvaarde factuur?\"")
"""The reply to a question too vague to search for."""
FEEDBACK_LOST = "Ik vind dat antwoord niet meer terug; je feedback is niet bewaard."
"""A vote on a reply the log no longer has."""
FEEDBACK_THANKS = "Bedankt voor je feedback!"
"""The acknowledgement of 👍."""
FEEDBACK_THANKS_DOWN = ("Bedankt, dat helpt ons de helpdesk te verbeteren. Wil je dat een expert ernaar kijkt? "
                        "Typ dan /expert.")
"""The acknowledgement of 👎, with the offer of an expert."""


def validity_warning(notes: Sequence[str]) -> str:
    """The warning under a reply that cites sources outside their validity window ("" when there are none)."""
    if not notes:
        return ""
    return ("\n\nLet op: " + "; ".join(notes) + ". Controleer de geldende tekst, of typ /expert om het aan de "
            "expertenpool te vragen.")


# -- commands (bot/core.py) ----------------------------------------------------------------------------------------

ASK_ANOTHER = "Stel gerust een nieuwe vraag."
"""What a reply to a command (/reset, /status) ends with."""
CONVERSATION_RESET = f"Het gesprek is gewist. {ASK_ANOTHER}"
"""The reply to /reset."""
UNKNOWN_COMMAND = f"Die opdracht ken ik niet. {HELP_TEXT}"
"""The reply to a /command the helpdesk does not know."""
FOLLOW_UP_EXAMPLE = "/vervolg 12 en wat als ...?"
"""How /vervolg is used, as the replies show it."""
FOLLOW_UP_TEXT_MISSING = f"Typ je vervolgvraag na het nummer, bijvoorbeeld: {FOLLOW_UP_EXAMPLE}"
"""The reply to /vervolg N without a question."""


def number_missing(command: str) -> str:
    """The reply to /opgelost, /vervolg or /bijlagen without a ticket number: how the command is used."""
    usage = {"/opgelost": "/opgelost 12", "/bijlagen": "/bijlagen 12"}.get(command, FOLLOW_UP_EXAMPLE)
    return f"Geef het nummer van je vraag mee, bijvoorbeeld: {usage}"


# -- asking an expert (bot/core.py) --------------------------------------------------------------------------------

ASKING_EXPERTS = "Ik leg je vraag voor aan de expertenpool."
"""What an escalation on request starts with (and the Telegram button's toast, EXPERT_BUTTON_ACK)."""
WHICH_QUESTION = "Welke vraag wil je aan de expertenpool voorleggen? Typ /expert gevolgd door je vraag."
"""The reply to /expert when there is no question to pass on."""
SOURCES_MEANWHILE = " Deze bronnen kunnen intussen helpen:"
"""Added to an escalation's first sentence when a source answers the question as asked."""
NO_POOL = "Er is geen expertenpool beschikbaar, dus ik kan je vraag niet doorsturen."
"""Without a ticket store (tests, tools): a question or follow-up cannot be passed on."""
NO_POOL_ESCALATION = f"{NO_POOL} Neem contact op met de juridische dienst van je bestuur."
"""Without a ticket store: the next step of an escalation."""


def already_asked(ticket: int) -> str:
    """The reply to /expert for a question that is already a ticket."""
    return f"Die vraag ligt al bij de expertenpool als VB-{ticket}. Met /status volg je ze op."


def legal_intro(label: str) -> str:
    """What an escalation of a legal-advice or own-case question starts with (``label``: what it is about)."""
    return (f"Dit lijkt een vraag over {label}. Daarover geef ik geen advies: een jurist moet je "
            f"concrete situatie bekijken. {ASKING_EXPERTS}")


# -- every channel's message limit (bot/runtime.py) ----------------------------------------------------------------

RATE_LIMITED = ("Je stuurt veel berichten kort na elkaar. Wacht even en probeer het over een minuut opnieuw; "
                "je vorige vragen zijn wel verwerkt.")
"""What an officer hears, once, when they go over a channel's message limit."""

REASON_ASKED = "op vraag van de gebruiker"
"""Why a ticket was opened when the officer asked for an expert (the expert reads it in the mail)."""

# -- tickets (bot/escalator.py) ------------------------------------------------------------------------------------

STATE_NL = {"open": "wacht op verzending", "sent": "bij een expert", "answered": "beantwoord", "closed": "afgesloten",
            "reopened": "vervolgvraag bij een expert"}
"""How /status names a ticket's state."""
NO_TICKETS = "Je hebt geen vragen bij de expertenpool."
"""/status for an officer without tickets."""
STATUS_HEADING = "Je vragen bij de expertenpool:"
"""The first line of /status, above one line per ticket."""
ANSWER_HERE = "hier in dit gesprek"
"""Where an expert's answer reaches the officer, unless the channel says otherwise (the console does)."""
EXPERT_ATTACHMENT = "Bijlage van de expert"
"""A file's note as a Telegram caption, which it opens."""
EXPERT_ATTACHMENT_INLINE = "bijlage van de expert"
"""A file's note where it follows the file's size (Teams, the console)."""


def status_line(tag: str, state: str, start: str) -> str:
    """One ticket in /status: its tag, its state in words, the start of its question."""
    return f"- {tag}: {STATE_NL.get(state, state)} — {start}"


def ticket_not_found(number: int) -> str:
    """/opgelost, /vervolg or /bijlagen with a number that is not one of the officer's tickets."""
    return f"Ik vind geen vraag VB-{number} van jou."


def ticket_without_pool(tag: str) -> str:
    """A new ticket when no expert pool is configured."""
    return (f"Je vraag is geregistreerd als {tag}, maar er is nog geen expertenpool ingesteld: de "
            "beheerder van de helpdesk ziet ze in de lijst met tickets. Met /status volg je ze op.")


def ticket_without_mail(tag: str, where: str) -> str:
    """A new ticket when no mail server is configured (``where``: where the answer will arrive)."""
    return (f"Je vraag heeft nummer {tag}. De mail naar de expertenpool staat klaar en vertrekt zodra "
            f"de mailserver is ingesteld. Het antwoord krijg je {where}; met /status volg je ze op.")


def ticket_sent(tag: str, expert: str | None, sla_hours: float, where: str) -> str:
    """A new ticket mailed to an expert (``expert``: their name, when known)."""
    who = f" ({expert})" if expert else ""
    return (f"Je vraag heeft nummer {tag} en gaat naar een expert{who}, die normaal binnen "
            f"{sla_hours:g} uur antwoordt. Het antwoord krijg je {where}. Met /status volg je "
            "ze op.")


def ticket_solved(tag: str) -> str:
    """The reply to /opgelost N."""
    return f"Fijn! {tag} is afgesloten."


def follow_up_sent(tag: str, where: str) -> str:
    """The reply to /vervolg N."""
    return f"Je vervolgvraag bij {tag} gaat naar dezelfde expert. Het antwoord krijg je {where}."


def no_attachments(number: int) -> str:
    """The reply to /bijlagen N for a ticket without (remaining) files."""
    return f"Bij VB-{number} heeft de expert geen bijlagen gestuurd (of ze zijn al verwijderd)."


def attachments_again(number: int, count: int) -> str:
    """The reply to /bijlagen N that hands the expert's files out again."""
    what = "de bijlage" if count == 1 else f"de {count} bijlagen"
    return f"Hier is {what} van de expert bij VB-{number}."


def attachment_note(number: int) -> str:
    """A file's note when /bijlagen N hands it out again."""
    return f"{EXPERT_ATTACHMENT} bij VB-{number}"


# -- answers from the sources (bot/answers.py, bot/core.py, bot/resources.py) --------------------------------------

SEE_ALSO = "Zie ook:"
"""The heading of the other sources under an extractive answer."""


def according_to(title: str) -> str:
    """What a quote from a source without a label is introduced with."""
    return f"Volgens {title}"


def according_to_article(article: str, law: str) -> str:
    """What a quote from an article of a law is introduced with."""
    return f"Volgens {article} van {law}"


def according_to_section(heading: str, title: str) -> str:
    """What a quote from a section of a note is introduced with (its heading is often the question it answers)."""
    return f"Volgens \"{heading}\" in {title}"


def expired_note(title: str, until: str) -> str:
    """A cited source that is no longer valid (``until``: a Dutch date)."""
    return f"{title} was geldig tot {until} en kan verouderd zijn"


def not_yet_valid_note(title: str, since: str) -> str:
    """A cited source that is not yet in force (``since``: a Dutch date)."""
    return f"{title} geldt pas vanaf {since}"


# -- templates and cases (bot/core.py, bot/resources.py) -----------------------------------------------------------

NO_TEMPLATE = ("Daarvoor heb ik geen sjabloon in mijn bronnen. Typ /expert als je de expertenpool "
               "wilt vragen of er een model bestaat.")
"""A request for a template that no template matches."""
NO_CASE = ("Daarvan ken ik geen praktijkvoorbeeld. Typ /expert als je de expertenpool wilt vragen "
           "of een ander bestuur er ervaring mee heeft.")
"""A request for practice examples that no case matches."""


def template_note(version: str | None) -> str:
    """A template file's note."""
    return f"Sjabloon, versie van {version}"


def template_with_answer(n: int, title: str, version: str | None) -> str:
    """Added to an answer that a template of the procedure comes with (``n``: its citation number)."""
    return f"\n\nEen sjabloon dat hierbij past: [{n}] {title} (versie van {version}). Het bestand krijg je hierbij."


def template_line(n: int, title: str, version: str | None, description: str | None) -> str:
    """One template offered on request."""
    return f"[{n}] {title} (versie van {version}): {description}"


def templates_found(lines: Sequence[str], validity: str) -> str:
    """The reply to a request for templates: one ``template_line`` each, ``validity_warning``, what to do with them."""
    what = "Dit sjabloon past" if len(lines) == 1 else "Deze sjablonen passen"
    return (f"{what} bij je vraag:\n\n" + "\n".join(lines) + validity +
            "\n\nHet bestand krijg je hierbij. Pas het aan je eigen dossier aan en laat het nalezen voor je het "
            f"gebruikt.\n\n{NEXT_STEP_ANSWER}")


def case_line(n: int, title: str, procedure: str, subject: str | None, lesson: str) -> str:
    """One practice example: its title, procedure and subject, and its first lesson when it has one."""
    return f"[{n}] {title}: {procedure}, {subject}." + (f" Les: {lesson}" if lesson else "")


def cases_found(lines: Sequence[str], *, elsewhere: int, validity: str) -> str:
    """The reply to a request for practice examples: its lines, how many more elsewhere, the validity warning."""
    other = (f"\n\nBij andere soorten besturen ken ik nog {elsewhere} voorbeeld"
             f"{'en' if elsewhere > 1 else ''} van deze procedure: vraag ernaar zonder het soort bestuur te "
             "noemen." if elsewhere else "")
    return ("Praktijkvoorbeelden die bij je vraag passen:\n\n" + "\n".join(lines) +
            "\n\nDe volledige beschrijving staat in de bronnen hieronder." + other + validity +
            f"\n\n{NEXT_STEP_ANSWER}")


# -- procedure choice (bot/procedure.py, bot/core.py) --------------------------------------------------------------

PROCEDURE_HOW_TO_ANSWER = "Kies met een knop of typ het nummer. Typ terug voor de vorige vraag of stop om te stoppen."
"""Under every question of the guided walk."""
PROCEDURE_BACK_LABEL = "« Terug"
"""The walk's button to the previous question."""
PROCEDURE_STOP_LABEL = "Stop"
"""The walk's button that ends it."""
PROCEDURE_STOPPED = "Gestopt. Typ /procedure om opnieuw te beginnen, of stel gewoon je vraag."
"""The reply to stopping the walk."""
PROCEDURE_RESTARTED = "Er loopt geen keuzehulp (meer); ik begin bij de eerste vraag.\n\n"
"""Before the first question, when an answer comes in for a walk that is no longer there."""
PROCEDURE_OLD_BUTTON = "Die knop hoort bij een eerdere vraag. Dit is de vraag van nu:\n\n"
"""Before the current question, when a button of an earlier one is pressed."""
PROCEDURE_UNKNOWN_ANSWER = "Dat antwoord ken ik niet. "
"""Before the current question, when the answer is none of its choices."""
LAW_OF_2016 = " van de wet van 17 juni 2016"
"""After the articles a recommendation cites when they are all of the procurement law."""
RECOMMENDATION_DISCLAIMER = (
    "\n\nDit is een eerste oriëntatie, geen juridisch advies. Wil je je keuze laten nakijken? Kies "
    f"\"{ASK_EXPERT_LABEL}\" of typ /expert: je antwoorden gaan mee naar de expertenpool.")
"""What a recommendation ends with."""


def procedure_question(number: int, text: str) -> str:
    """A question of the walk, numbered from 1."""
    return f"Vraag {number}: {text}"


def pick_a_number(count: int) -> str:
    """Before the current question, when a typed number is not one of its ``count`` choices."""
    return f"Kies een nummer van 1 tot {count}.\n\n"


def recommendation(procedure: str, why: str, recap: str, *, refs: str = "", more: str = "",
                   template: str = "") -> str:
    """The end of the walk: procedure, why, answers, legal basis, notes, the template handed out ("[3] title")."""
    text = f"Mijn aanbeveling: {procedure}.\n\nWaarom: {why}\n\nJe antwoorden:\n{recap}"
    if refs:
        text += f"\n\nRechtsgrond: {refs}."
    if more:
        text += f"\nMeer uitleg en een stappenplan: {more}."
    if template:
        text += f"\nHet sjabloon {template} krijg je hierbij."
    return text + RECOMMENDATION_DISCLAIMER


def procedure_summary(procedure: str, answered: str) -> str:
    """The walk as one question for the expert pool (and the officer's /status)."""
    return f"Welke procedure past bij mijn opdracht? Vraagbaak raadt aan: {procedure}. Mijn antwoorden: {answered}"


# -- download pages (bot/downloads.py) -----------------------------------------------------------------------------

DOWNLOAD_INVALID = "Deze downloadlink is ongeldig. Gebruik de link uit je gesprek met Vraagbaak."
"""The page for a link that is not signed by this helpdesk (403)."""
DOWNLOAD_EXPIRED = ("Deze downloadlink is verlopen. Vraag in je gesprek met Vraagbaak een nieuwe link met "
                    "/bijlagen gevolgd door het nummer van je vraag (bijvoorbeeld /bijlagen 12).")
"""The page for an expired link (410)."""
DOWNLOAD_GONE = "Dit bestand is er niet meer: het is verwijderd, bijvoorbeeld na de bewaartermijn."
"""The page for a file that is no longer on disk (404)."""
DOWNLOAD_UNAVAILABLE = "Het bestand kan nu niet worden opgehaald. Probeer het later opnieuw."
"""The page when the file cannot be looked up now (503)."""

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
EXPERT_BUTTON_ACK = ASKING_EXPERTS
"""The toast of the expert button: the sentence the reply starts with."""
NOT_YOUR_WALK = "Deze keuzehulp is van een collega. Typ /procedure om je eigen keuzehulp te starten."


def file_gone(name: str) -> str:
    """The message sent instead of a file that is no longer on disk."""
    return f"Het bestand {name} is er niet meer (verwijderd na de bewaartermijn?)."


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
DATABASE_AWAY = ("Even geduld: Vraagbaak kan zijn gegevens nu heel even niet bereiken. Stuur je bericht over een "
                 "minuutje opnieuw; wat je eerder vroeg, is niet verloren.")
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
NOTHING_TO_RATE = "Er is nog geen antwoord om te beoordelen. Stel eerst een vraag."
"""A 👍 or 👎 typed before any answer."""
GOODBYE = "Tot ziens!"
"""What the chat says when it ends."""
OFFICER_PROMPT = "Jij: "
"""The chat's prompt for the officer's line."""
BOT_SPEAKER = "Vraagbaak: "
"""What the chat puts before each reply."""

# -- an expert's answer, in every channel --------------------------------------------------------------------------

EXPERT_HEADING = "Antwoord van de expertenpool"
"""What an expert's answer starts with (a Teams card puts it in its header instead)."""


ANSWER_IN_ATTACHMENT = "Het antwoord van de expert staat in de bijlage."
"""An expert's answer that is only an attachment (the files follow the message)."""
ALLOWED_FILE_TYPES = "PDF, Word (.docx), Excel (.xlsx), PowerPoint (.pptx), OpenDocument of tekst"
"""The kinds of file the helpdesk passes on from an expert (``escalation.attachments.ALLOWED_TYPES``), in words."""


def expert_answer_text(answer: ExpertAnswer, *, heading: bool = True) -> str:
    """The whole message: which question it answers, the answer, who answered, what to do next. Without
    ``heading`` the first words ("Antwoord van de expertenpool") are left to the channel's own header."""
    if answer.wording is not None:  # queued by an older version, worded then
        return answer.wording if heading else _under_heading(answer.wording)
    start = " ".join(answer.question.split())
    start = start if len(start) <= 80 else start[:80].rsplit(" ", 1)[0] + " …"
    intro = (f"{EXPERT_HEADING} op je vraag {answer.tag} (\"{start}\"):" if heading
             else f"Op je vraag {answer.tag} (\"{start}\"):")
    body = answer.answer or ANSWER_IN_ATTACHMENT
    if answer.truncated:
        body += (f" …\n\n(Het antwoord is ingekort: het is langer dan dit bericht toelaat. Vraag de helpdesk naar "
                 f"het volledige antwoord bij {answer.tag}.)")
    note = ""
    if answer.refused:
        names = ", ".join(answer.refused[:MAX_ATTACHMENTS])
        note = (f"De expert stuurde ook {names} mee. Dat geeft de helpdesk niet door: ze geeft alleen bestanden door "
                f"die ze veilig weet ({ALLOWED_FILE_TYPES}, zonder macro's, tot {MAX_ATTACHMENT_BYTES // (1024 * 1024)} MB "
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
