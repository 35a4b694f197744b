"""Reply parsing: real-format expert replies (Outlook, Gmail, Apple Mail; NL, FR, EN) down to the new answer."""

from __future__ import annotations

from pathlib import Path

import pytest

from escalation.reply_parsing import ParsedReply, ReplyParseError, html_to_text, parse_reply, strip_quoted

MAIL = Path(__file__).resolve().parents[1] / "fixtures" / "mail"
MARKER = "##- Antwoord boven deze lijn / Répondez au-dessus de cette ligne -##"


def fixture(name: str) -> ParsedReply:
    return parse_reply((MAIL / name).read_bytes())


def mail(headers: str, body: str = "Dit is het antwoord.\n", *, charset: str = "utf-8") -> bytes:
    """A minimal single-part mail; headers without From get a default sender."""
    if "From:" not in headers:
        headers = "From: Expert <expert@example.org>\n" + headers
    head = headers.strip("\n") + f"\nMIME-Version: 1.0\nContent-Type: text/plain; charset={charset}\n\n"
    return head.encode("ascii") + body.encode(charset)


# --- Fixtures: whole mails --------------------------------------------------------------------------------


def test_outlook_nl_answer_threading_and_windows_1252() -> None:
    reply = fixture("outlook_nl.eml")
    assert reply.answer == (
        "Beste collega,\n\n"
        "Ja, dat mag. Een voorafgaande marktconsultatie is toegelaten (art. 51 van de wet van 17 juni 2016), "
        "zolang ze de mededinging niet vervalst. Het gesprek met één leverancier maakt hem niet automatisch "
        "ongeschikt om later in te schrijven.\n\n"
        "Let wel: informatie die u aan die leverancier geeft, moet u in de opdrachtdocumenten ook aan alle "
        "andere kandidaten bezorgen. Voor een opdracht van ongeveer 25.000 € excl. btw houdt u best een kort "
        "verslag van het gesprek bij."
    )
    assert reply.subject == "RE: [VB-123] Mag ik met één leverancier praten"
    assert reply.ticket_tag == 123
    assert reply.in_reply_to == "vb-123.abc123@vraagbaak.local"
    assert reply.references == ("vb-123.abc123@vraagbaak.local",)
    assert reply.message_id == "AM0PR01MB0001A1B2C3D4E5F6@AM0PR01MB0001.eurprd01.prod.outlook.example"
    assert reply.sender == "an.voorbeeld@example.be"
    assert reply.sender_name == "Voorbeeld, An"
    assert reply.auto_submitted is False
    assert reply.attachments == ()


def test_outlook_nl_prefers_plain_part_and_raw_text_keeps_the_history() -> None:
    reply = fixture("outlook_nl.eml")
    assert "<p" not in reply.raw_text and "MsoNormal" not in reply.raw_text
    assert "Verzonden: donderdag 26 november 2026 10:12" in reply.raw_text
    assert MARKER in reply.raw_text
    assert "\r" not in reply.raw_text
    assert "Verzonden:" not in reply.answer and "Met vriendelijke groeten" not in reply.answer
    assert "An Voorbeeld" not in reply.answer and "T 09 000 00 00" not in reply.answer


def test_outlook_nl_html_part_gives_the_same_answer_as_the_plain_part() -> None:
    import email
    import email.policy

    message = email.message_from_bytes((MAIL / "outlook_nl.eml").read_bytes(), policy=email.policy.default)
    html_part = message.get_body(preferencelist=("html",))
    assert strip_quoted(html_to_text(html_part.get_content())) == fixture("outlook_nl.eml").answer


def test_gmail_nl_base64_and_attribution_wrapped_over_two_lines() -> None:
    reply = fixture("gmail_nl.eml")
    assert reply.answer == (
        "Dag,\n\n"
        "De gemeente mag een raamovereenkomst met één deelnemer sluiten. De voorwaarden\n"
        "van de opdrachten op basis van die raamovereenkomst moeten dan wel volledig in\n"
        "de opdrachtdocumenten staan.\n\n"
        "De looptijd is in principe maximaal vier jaar. Een langere duur kan alleen in\n"
        "uitzonderlijke, behoorlijk gemotiveerde gevallen."
    )
    assert "Op vr 27 nov. 2026 om 10:12 schreef Vraagbaak <" in reply.raw_text
    assert reply.ticket_tag == 88
    assert reply.sender == "pieter.testman@example.org"


def test_gmail_nl_folded_references_are_split_and_unbracketed() -> None:
    reply = fixture("gmail_nl.eml")
    assert reply.references == ("vb-88.9f8e7d@vraagbaak.local", "vb-88.reminder1@vraagbaak.local")
    assert reply.in_reply_to == "vb-88.reminder1@vraagbaak.local"
    assert reply.message_id == "CAF0example0000000000gmail0001@mail.gmail.com"


def test_apple_fr_answer_without_closing_iphone_line_or_quote() -> None:
    reply = fixture("apple_fr.eml")
    assert reply.answer == (
        "Bonjour,\n\n"
        "Un soumissionnaire évincé peut introduire une demande de suspension en extrême urgence devant le "
        "Conseil d'État dans les quinze jours qui suivent la notification de la décision motivée. Pendant ce "
        "délai, vous ne pouvez pas conclure le marché.\n\n"
        "Je vous conseille donc d'attendre l'expiration du délai d'attente avant de notifier la conclusion."
    )
    assert reply.subject == "Re: [VB-7] Recours contre notre décision"
    assert reply.ticket_tag == 7
    assert reply.sender_name == "Claire Exemple"
    assert "Envoyé de mon iPhone" in reply.raw_text


def test_apple_fr_html_blockquote_is_stripped_too() -> None:
    import email
    import email.policy

    message = email.message_from_bytes((MAIL / "apple_fr.eml").read_bytes(), policy=email.policy.default)
    text = html_to_text(message.get_body(preferencelist=("html",)).get_content())
    assert "> Le 27 nov. 2026 à 10:12, Vraagbaak <helpdesk@example.be> a écrit :" in text
    answer = strip_quoted(text)
    assert answer.startswith("Bonjour,\n\nUn soumissionnaire évincé")
    assert answer.endswith("avant de notifier la conclusion.")
    assert "iPhone" not in answer and "Claire" not in answer and "Question d’un agent" not in answer


def test_outlook_fr_html_only_latin1_with_french_header_block() -> None:
    reply = fixture("outlook_fr.eml")
    assert reply.answer == (
        "Bonjour,\n\n"
        "Oui, vous pouvez attribuer le marché à l'unique soumissionnaire, à condition que son offre soit "
        "régulière et que vous ayez vérifié que ses prix ne sont pas anormaux.\n\n"
        "Documentez cette vérification des prix dans la décision motivée. Un dépassement de l'estimation "
        "(85.000 € HTVA) ne suffit pas, à lui seul, pour écarter l'offre."
    )
    assert "De : Vraagbaak <helpdesk@example.be>" in reply.raw_text
    assert "<p" not in reply.raw_text and "&eacute;" not in reply.raw_text and "MsoNormal" not in reply.raw_text
    assert reply.subject == "RE : [VB-31] Une seule offre reçue"
    assert reply.ticket_tag == 31


def test_english_interleaved_bottom_post_keeps_answers_and_drops_signature() -> None:
    reply = fixture("english_inline.eml")
    # format=flowed soft breaks are joined, so each answer paragraph is one line.
    assert reply.answer == (
        "Yes. An innovation partnership fits when the solution does not yet exist on the market and you intend "
        "to buy the result after the research phase. For research services without a purchase commitment, "
        "pre-commercial procurement is the lighter route.\n\n"
        "Set out the phases and interim targets in the procurement documents; you may end the partnership "
        "after each phase."
    )
    assert "Jane Sample" not in reply.answer and "Context:" not in reply.answer
    assert reply.ticket_tag == 140


def test_only_quote_gives_empty_answer() -> None:
    reply = fixture("only_quote.eml")
    assert reply.answer == ""
    assert MARKER in reply.raw_text
    assert reply.ticket_tag == 88


def test_autoreply_is_flagged() -> None:
    reply = fixture("autoreply.eml")
    assert reply.auto_submitted is True
    assert reply.ticket_tag == 88


def test_no_references_uses_subject_tag_and_fixes_mislabelled_latin1_euro() -> None:
    reply = fixture("no_references.eml")
    assert reply.in_reply_to is None
    assert reply.references == ()
    assert reply.ticket_tag == 55
    assert reply.sender == "an.voorbeeld@example.be"
    assert reply.sender_name is None
    # Declared ISO-8859-1 but written as Windows-1252: byte 0x80 must come out as the euro sign.
    assert reply.answer == (
        "Goedemiddag,\n\n"
        "Een prijsherziening is alleen mogelijk als de opdrachtdocumenten een duidelijke herzieningsclausule "
        "bevatten. Zonder die clausule kunt u de prijs van 12.500 € niet eenzijdig aanpassen."
    )


def test_attachments_are_listed_and_not_taken_as_body() -> None:
    reply = fixture("with_attachment.eml")
    assert reply.attachments == ("advies-VB-61.pdf", "toelichting één.txt")
    assert "Bijlage: geen antwoordtekst." not in reply.raw_text
    assert reply.answer.startswith("Beste,\n\nIn bijlage vindt u mijn advies")
    assert reply.answer.endswith("van het KB uitvoering moet toetsen.")
    assert "Vraag van een ambtenaar" not in reply.answer and "An Voorbeeld" not in reply.answer


def test_garbage_is_rejected() -> None:
    with pytest.raises(ReplyParseError, match="no header"):
        fixture("garbage.eml")


# --- parse_reply on small inline mails --------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"", b"  \r\n", b"this is not a mail\nat all\n"])
def test_non_mail_bytes_raise(raw: bytes) -> None:
    with pytest.raises(ReplyParseError):
        parse_reply(raw)


def test_missing_sender_raises() -> None:
    raw = b"To: helpdesk@example.be\nSubject: [VB-1] x\n\nAntwoord.\n"
    with pytest.raises(ReplyParseError, match="sender"):
        parse_reply(raw)


def test_no_body_at_all_raises() -> None:
    with pytest.raises(ReplyParseError, match="no text body"):
        parse_reply(b"From: expert@example.org\nSubject: [VB-1] leeg\n\n")


def test_error_is_a_value_error() -> None:
    assert issubclass(ReplyParseError, ValueError)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ("Subject: Re: [VB-9] x\nAuto-Submitted: no", False),
        ("Subject: Re: [VB-9] x\nAuto-Submitted: auto-generated; type=bounce", True),
        ("Subject: Re: [VB-9] x\nX-Autoreply: yes", True),
        ("Subject: Re: [VB-9] x\nPrecedence: auto_reply", True),
        ("Subject: =?utf-8?q?R=C3=A9ponse_automatique=C2=A0=3A_=5BVB-9=5D_x?=", True),
        ("Subject: Out of Office: [VB-9] x", True),
        ("Subject: Re: [VB-9] Afwezigheid van een handtekening", False),
    ],
)
def test_auto_submitted_markers(headers: str, expected: bool) -> None:
    assert parse_reply(mail(headers)).auto_submitted is expected


@pytest.mark.parametrize(
    ("subject", "tag"),
    [("Re: [VB-42] x", 42), ("Fwd: RE: antwoord [vb-7]", 7), ("Re: VB-42 zonder haken", None), ("", None)],
)
def test_ticket_tag_from_subject(subject: str, tag: int | None) -> None:
    assert parse_reply(mail(f"Subject: {subject}")).ticket_tag == tag


def test_threading_ids_without_brackets_or_with_comments_are_normalised() -> None:
    raw = mail(
        "Subject: Re: [VB-3] x\n"
        "Message-ID: <  abc@example.org >\n"
        "In-Reply-To: <vb-3.ff00@vraagbaak.local> (Vraagbaak's message of Fri, 27 Nov 2026)\n"
        "References: vb-3.ff00@vraagbaak.local"
    )
    reply = parse_reply(raw)
    assert reply.message_id == "abc@example.org"
    assert reply.in_reply_to == "vb-3.ff00@vraagbaak.local"
    assert reply.references == ("vb-3.ff00@vraagbaak.local",)


def test_sender_is_lower_cased_address_only() -> None:
    reply = parse_reply(mail('From: "Janssens, Els" <Els.JANSSENS@Example.ORG>\nSubject: x'))
    assert reply.sender == "els.janssens@example.org"
    assert reply.sender_name == "Janssens, Els"


def test_utf8_body_labelled_us_ascii_is_still_decoded() -> None:
    raw = mail("Subject: x", "Het bedrag is 5.000 € per perceel.\n", charset="utf-8").replace(
        b"charset=utf-8", b"charset=us-ascii"
    )
    assert parse_reply(raw).answer == "Het bedrag is 5.000 € per perceel."


def test_unknown_charset_falls_back_without_crashing() -> None:
    raw = mail("Subject: x", "Prijs: 10 €\n", charset="utf-8").replace(b"charset=utf-8", b"charset=x-made-up")
    assert parse_reply(raw).answer == "Prijs: 10 €"


def test_empty_plain_part_falls_back_to_html() -> None:
    raw = (
        b"From: expert@example.org\nSubject: Re: [VB-5] x\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/alternative; boundary="b"\n\n'
        b"--b\nContent-Type: text/plain; charset=utf-8\n\n\n"
        b"--b\nContent-Type: text/html; charset=utf-8\n\n<div>Antwoord in <b>HTML</b>.</div>\n"
        b"--b--\n"
    )
    reply = parse_reply(raw)
    assert reply.answer == "Antwoord in HTML."
    assert reply.raw_text == "Antwoord in HTML."


# --- strip_quoted: one test per header style --------------------------------------------------------------

ANSWER = "Ja, dat kan op basis van artikel 42 van de wet."


@pytest.mark.parametrize(
    "history",
    [
        pytest.param(f"{MARKER}\nVraag: ...", id="marker-line"),
        pytest.param("##- Répondez au-dessus de cette ligne -##\nQuestion ...", id="marker-french-only"),
        pytest.param(f"> {MARKER}\n> Vraag: mag dit?", id="quote-block"),
        pytest.param("Op vr 27 nov. 2026 om 10:12 schreef Vraagbaak <helpdesk@example.be>:\n> Vraag", id="op-schreef"),
        pytest.param(
            "Op vr 27 nov. 2026 om 10:12 schreef Vraagbaak <\nhelpdesk@example.be> het volgende:\n\n> Vraag",
            id="op-schreef-wrapped",
        ),
        pytest.param(
            "Van: Vraagbaak <helpdesk@example.be>\nVerzonden: donderdag 26 november 2026 10:12\n"
            "Aan: Expert <expert@example.org>\nOnderwerp: [VB-123] Vraag\n\n" + MARKER,
            id="outlook-nl",
        ),
        pytest.param(
            "________________________________\nVan: Vraagbaak <helpdesk@example.be>\n"
            "Datum: donderdag 26 november 2026 om 10:12\nAan: Expert <expert@example.org>\nOnderwerp: x",
            id="outlook-nl-van-datum-with-rule",
        ),
        pytest.param(
            "*Van:* Vraagbaak <helpdesk@example.be>\n*Verzonden:* donderdag 26 november 2026 10:12\n"
            "*Aan:* expert@example.org\n*Onderwerp:* x",
            id="outlook-bold-as-text",
        ),
        pytest.param(
            "De : Vraagbaak <helpdesk@example.be>\nEnvoyé : jeudi 26 novembre 2026 10:12\n"
            "À : Expert <expert@example.org>\nObjet : [VB-7] Question",
            id="outlook-fr",
        ),
        pytest.param(
            "De\u00a0: Vraagbaak <helpdesk@example.be>\nEnvoyé\u00a0: jeudi 26 novembre 2026 10:12\nObjet\u00a0: x",
            id="outlook-fr-nbsp",
        ),
        pytest.param(
            "From: Vraagbaak <helpdesk@example.be>\nSent: Thursday, November 26, 2026 10:12 AM\n"
            "To: Expert <expert@example.org>\nSubject: [VB-7] Question",
            id="outlook-en",
        ),
        pytest.param("-----Oorspronkelijk bericht-----\nVan: Vraagbaak", id="oorspronkelijk-bericht"),
        pytest.param("-----Message d'origine-----\nDe : Vraagbaak", id="message-d-origine"),
        pytest.param("-----Original Message-----\nFrom: Vraagbaak", id="original-message"),
        pytest.param("Le ven. 27 nov. 2026 à 10:12, Vraagbaak <helpdesk@example.be> a écrit :\n> Q", id="le-a-ecrit"),
        pytest.param(
            "Le ven. 27 nov. 2026 à 10:12, Vraagbaak <helpdesk@example.be> a\nécrit :\n\n> Q",
            id="le-a-ecrit-wrapped",
        ),
        pytest.param("On Fri, Nov 27, 2026 at 10:12 AM Vraagbaak <helpdesk@example.be> wrote:\n> Q", id="on-wrote"),
        pytest.param(
            "Op 27 nov. 2026, om 10:12 heeft Vraagbaak <helpdesk@example.be> het volgende geschreven:\n\n> Q",
            id="apple-nl",
        ),
        pytest.param("Le 27 nov. 2026 à 10:12, Vraagbaak <helpdesk@example.be> a écrit :\n\n> Q", id="apple-fr"),
    ],
)
def test_strip_quoted_cuts_each_history_style(history: str) -> None:
    assert strip_quoted(f"{ANSWER}\n\n{history}\n\nMeer geciteerde tekst.\n") == ANSWER


def test_strip_quoted_cuts_at_the_first_boundary() -> None:
    text = (
        f"{ANSWER}\n\n-----Original Message-----\nFrom: Vraagbaak\n\n"
        f"Nog een tussenstuk\n\n> {MARKER}\n"
    )
    assert strip_quoted(text) == ANSWER


def test_legal_sentence_that_looks_like_an_attribution_is_kept() -> None:
    text = "Op 12 mei 2026 schreef de Raad van State:\n\"De motivering moet afdoende zijn.\"\n\nDus motiveer."
    assert strip_quoted(text) == text


def test_from_line_without_a_date_line_is_not_a_header_block() -> None:
    text = "De: gemeente als aanbestedende overheid\nOpdracht: schoonmaak\nBesluit: gunnen aan de enige bieder."
    assert strip_quoted(text) == text


def test_bottom_posted_answer_below_the_quote_is_kept() -> None:
    text = f"> {MARKER}\n>\n> Vraag: mag ik met één leverancier praten?\n\nJa, dat mag, mits u het documenteert.\n"
    assert strip_quoted(text) == "Ja, dat mag, mits u het documenteert."


def test_interleaved_answers_are_kept_in_order() -> None:
    text = (
        "Op vr 27 nov. 2026 om 10:12 schreef Vraagbaak <helpdesk@example.be>:\n"
        "> Vraag 1: mag het?\n\nAntwoord 1: ja.\n\n"
        "> Vraag 2: hoe lang?\n> (vervolg)\n\nAntwoord 2: vier jaar.\n\n-- \nExpert\n"
    )
    assert strip_quoted(text) == "Antwoord 1: ja.\n\nAntwoord 2: vier jaar."


def test_bottom_posting_stops_at_an_unquoted_copy_of_the_original() -> None:
    text = f"> Vraag\n\nAntwoord.\n\nVan: Vraagbaak\nVerzonden: vrijdag 10:12\n\n{MARKER}\nVraag\n"
    assert strip_quoted(text) == "Antwoord."


def test_text_above_the_quote_wins_over_text_below_it() -> None:
    text = "Zie mijn antwoord hierboven.\n\n> Vraag\n\nOnder de quote.\n"
    assert strip_quoted(text) == "Zie mijn antwoord hierboven."


@pytest.mark.parametrize(
    "text",
    [
        "> Vraag\n> meer vraag\n",
        "Op vr 27 nov. 2026 om 10:12 schreef Vraagbaak <helpdesk@example.be>:\n\n> Vraag\n",
        "\n\nVan: Vraagbaak\nVerzonden: vrijdag\nOnderwerp: x\n\nVraag\n",
        f"{MARKER}\nVraag\n",
        "Verzonden vanaf mijn iPhone\n\n> Op 27 nov. 2026 om 10:12 heeft Vraagbaak het volgende geschreven:\n> Q\n",
    ],
)
def test_only_quoted_history_gives_empty_answer(text: str) -> None:
    assert strip_quoted(text) == ""


# --- strip_quoted: signatures and tidying -----------------------------------------------------------------


@pytest.mark.parametrize(
    "closing",
    ["Met vriendelijke groeten,", "Vriendelijke groet,", "Met vriendelijke groet", "Cordialement,", "Bien à vous,",
     "Kind regards,", "Best regards", "Groeten,", "Met vriendelijke groeten, An Voorbeeld"],
)
def test_closing_and_short_name_block_are_removed(closing: str) -> None:
    text = f"{ANSWER}\n\n{closing}\nAn Voorbeeld\nJuriste\nStad Voorbeeld\nT 09 000 00 00\n"
    assert strip_quoted(text) == ANSWER


def test_closing_followed_by_a_long_block_is_kept() -> None:
    tail = "\n".join(f"Regel {n} van een lange disclaimer." for n in range(8))
    text = f"{ANSWER}\n\nMet vriendelijke groeten,\n{tail}"
    assert strip_quoted(text) == text


def test_closing_alone_is_never_the_whole_answer_removed() -> None:
    assert strip_quoted("Met vriendelijke groeten,\nAn") == "Met vriendelijke groeten,\nAn"


def test_closing_word_inside_a_sentence_is_not_a_closing() -> None:
    text = f"{ANSWER}\nGroeten uit Gent en veel succes met de gunning."
    assert strip_quoted(text) == text


@pytest.mark.parametrize("delimiter", ["-- ", "--"])
def test_signature_delimiter_removes_the_rest(delimiter: str) -> None:
    text = f"{ANSWER}\n\n{delimiter}\nJane Sample\nhttps://example.org\nNog tien regels die niet meetellen\n"
    assert strip_quoted(text) == ANSWER


@pytest.mark.parametrize(
    "tagline",
    ["Verzonden vanaf mijn iPhone", "Envoyé de mon iPhone", "Sent from my iPhone", "Verstuurd vanaf mijn Galaxy"],
)
def test_device_taglines_are_dropped(tagline: str) -> None:
    assert strip_quoted(f"{ANSWER}\n\n{tagline}\n") == ANSWER


def test_blank_lines_are_collapsed_and_crlf_normalised() -> None:
    text = "Eerste alinea.   \r\n\r\n\r\n\r\n\r\nTweede alinea.\r\n\r\n"
    assert strip_quoted(text) == "Eerste alinea.\n\nTweede alinea."


def test_plain_text_without_history_is_returned_as_is() -> None:
    assert strip_quoted(f"  \n{ANSWER}\n\nTweede alinea.\n") == f"{ANSWER}\n\nTweede alinea."


# --- html_to_text -----------------------------------------------------------------------------------------


def test_html_line_breaks_paragraphs_and_entities() -> None:
    html = "<div>Regel&nbsp;1<br>Regel 2</div><div>Regel 3 &amp; &lt;4&gt; &euro;</div><p>Alinea</p><p>Alinea 2</p>"
    assert html_to_text(html) == "Regel 1\nRegel 2\nRegel 3 & <4> €\n\nAlinea\n\nAlinea 2"


def test_html_blockquotes_become_quote_lines_and_nest() -> None:
    html = "<div>Antwoord</div><blockquote>Vraag<br><blockquote>Oudere vraag</blockquote>Einde</blockquote>"
    assert html_to_text(html) == "Antwoord\n> Vraag\n> > Oudere vraag\n> Einde"


def test_html_drops_head_style_script_and_comments() -> None:
    html = (
        "<html><head><title>Titel</title><style>p {color: red}</style></head><body>"
        "<!--[if gte mso 9]><xml><o:x/></xml><![endif]--><script>alert(1)</script>"
        "<p class=MsoNormal>Tekst<o:p></o:p></p></body></html>"
    )
    assert html_to_text(html) == "Tekst"


def test_html_collapses_source_whitespace_but_keeps_pre() -> None:
    html = "<div>een\n   twee\tdrie</div><pre>  a\n  b</pre>"
    assert html_to_text(html) == "een twee drie\n  a\n  b"
