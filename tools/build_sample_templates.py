"""Build the sample templates of Vraagbaak (voorbeeldinhoud) in corpus/sample/templates/.

    .venv/bin/python tools/build_sample_templates.py [--out DIR]

Writes aankondiging-marktconsultatie.docx and beslissingsnota-keuze-procedure.docx (python-docx) and
checklist-innovatiepartnerschap.odt (odfpy). The output is deterministic: fixed document properties (dated
2026-01-15) and fixed timestamps inside the ZIP packages, so a rebuild without content changes gives the same bytes.
The texts are sample content for demonstration, not legal advice; their legal statements follow the sample guidance
notes in corpus/sample/guidance/. The catalogue that describes the files is sjablonen.yaml beside them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import zipfile
from pathlib import Path

VERSION = dt.datetime(2026, 1, 15, 0, 0, 0)
AUTHOR = "Vraagbaak (voorbeeldinhoud)"
DISCLAIMER = ("Voorbeeldinhoud van Vraagbaak: dit sjabloon is geen juridisch advies. Pas het aan je eigen dossier "
               "aan en controleer altijd de officiële tekst van de wet van 17 juni 2016 inzake overheidsopdrachten.")
HERE = Path(__file__).resolve().parents[1] / "corpus" / "sample" / "templates"

# A document is a list of blocks: ("h1" | "h2", text), ("p", text), ("note", text) for a fill-in instruction,
# ("ul", [items]), ("ol", [items]) or ("table", [header, *rows]).

MARKTCONSULTATIE = [
    ("h1", "Aankondiging van een voorafgaande marktconsultatie"),
    ("p", "[naam bestuur] – [titel van de uitdaging] – referentie [dossiernummer] – gepubliceerd op [datum]"),
    ("note", ("Invulinstructie: vervang elke tekst tussen vierkante haken, schrap wat niet past en laat de "
              "aankondiging nalezen door de aankoopdienst voor je ze publiceert.")),
    ("h2", "Waarom organiseren we deze marktconsultatie?"),
    ("p", ("[naam bestuur] bereidt een mogelijke overheidsopdracht voor rond [onderwerp]. Voor we een "
           "plaatsingsprocedure kiezen en opdrachtdocumenten schrijven, willen we weten wat ondernemingen vandaag "
           "kunnen aanbieden en waaraan ze werken. Art. 51 van de wet van 17 juni 2016 inzake overheidsopdrachten laat "
           "een aanbestedende overheid toe de markt te raadplegen om een plaatsing voor te bereiden en ondernemingen "
           "te informeren over haar plannen en eisen, op voorwaarde dat de mededinging niet wordt vervalst.")),
    ("p", "Deze tekst is geen aankondiging van een opdracht en geen oproep om offertes in te dienen."),
    ("h2", "Welke uitdaging willen we aanpakken?"),
    ("note", ("Beschrijf het probleem en het gewenste resultaat, niet de oplossing. Schrijf dus niet \"we zoeken "
              "toestel X\", maar wel wat er beter moet, voor wie, en hoe je dat meet.")),
    ("ul", ["Huidige situatie: [wat loopt er vandaag mis of kan beter]",
            "Wie heeft er baat bij: [inwoners, gebruikers, diensten]",
            "Gewenst resultaat en hoe we succes meten: [meetbare doelstelling]",
            ("Randvoorwaarden: [privacy, informatieveiligheid, duurzaamheid, toegankelijkheid, koppeling met "
             "bestaande systemen]")]),
    ("h2", "Wat willen we van de markt leren?"),
    ("ol", [("Bestaan er vandaag oplossingen die aan deze uitdaging beantwoorden, of moeten ze nog aangepast of "
             "ontwikkeld worden?"),
            "Welke kosten moeten we verwachten over de hele levensduur, en hoe zijn die opgebouwd?",
            "Welke doorlooptijd en welke fasering zijn realistisch?",
            "Welke risico's en randvoorwaarden ziet u?",
            ("Hoe kunnen we de opdracht opdelen (bijvoorbeeld in percelen) zodat ook kmo's en start-ups kunnen "
             "deelnemen?"),
            "Welke informatie van [naam bestuur] heeft u nodig om later een goede offerte te kunnen maken?"]),
    ("h2", "Hoe kan uw onderneming deelnemen?"),
    ("p", "Elke geïnteresseerde onderneming kan deelnemen, op een of meer van de volgende manieren:"),
    ("ul", [("Schriftelijk antwoord op de vragenlijst in bijlage, uiterlijk op [datum] om [uur], via [e-mailadres "
             "of e-Procurementplatform]. Een antwoord van hoogstens [aantal] pagina's volstaat."),
            ("Informatiesessie op [datum] in [locatie of online]. Na de sessie publiceren we de presentatie en de "
             "vragen en antwoorden voor iedereen."),
            ("Individueel gesprek van [duur] minuten, aan te vragen tot [datum]. Elke onderneming krijgt dezelfde "
             "tijd, dezelfde vragen en dezelfde informatie; van elk gesprek maken we een kort verslag.")]),
    ("p", ("We vragen geen offertes, geen prijsofferte met verbintenis en geen uitgewerkte ontwerpen. Deelnemen is "
           "vrijblijvend en wordt niet vergoed.")),
    ("table", [["Stap", "Datum"],
               ["Publicatie van deze aankondiging", "[datum]"],
               ["Informatiesessie", "[datum]"],
               ["Uiterste datum schriftelijke antwoorden", "[datum]"],
               ["Individuele gesprekken", "[periode]"],
               ["Publicatie van een samenvatting van de consultatie", "[datum]"]]),
    ("h2", "Hoe gaan we om met uw informatie?"),
    ("ul", ["We gebruiken uw antwoorden alleen om de plaatsing van een eventuele opdracht voor te bereiden.",
            ("Duid vertrouwelijke informatie, zoals bedrijfsgeheimen, duidelijk aan. Die delen we niet met anderen "
             "zonder uw toestemming."),
            ("Informatie die relevant is voor een latere procedure, zullen we aan alle kandidaten of inschrijvers "
             "bezorgen, bijvoorbeeld als neutrale samenvatting bij de opdrachtdocumenten (art. 52 van de wet van "
             "17 juni 2016)."),
            ("Productnamen, merken of eigen specificaties van één onderneming nemen we niet over in latere "
             "technische eisen.")]),
    ("h2", "Geeft deelname een voordeel?"),
    ("p", ("Nee. Deelnemen geeft geen recht op een opdracht en geen voorrang in een latere procedure; wie niet "
           "deelneemt, heeft daardoor geen nadeel. Een onderneming die aan deze consultatie meewerkt, wordt daarom "
           "niet uitgesloten van een latere procedure: [naam bestuur] neemt wel maatregelen zodat haar deelname de "
           "mededinging niet vervalst, zoals het delen van relevante informatie met alle kandidaten en voldoende "
           "lange termijnen (art. 52). [naam bestuur] is niet verplicht om na deze consultatie een opdracht te "
           "plaatsen.")),
    ("h2", "Wat gebeurt er na de consultatie?"),
    ("p", ("We vatten samen wat we geleerd hebben en beslissen dan of en hoe we een opdracht plaatsen: welke "
           "procedure, welke percelen, welke raming en welke gunningscriteria. Een eventuele opdracht maken we "
           "bekend volgens de regels die voor die procedure gelden. Verwachte start: [periode].")),
    ("h2", "Contact"),
    ("p", ("[naam contactpersoon], [dienst], [e-mailadres], [telefoonnummer]. Stel vragen schriftelijk; we "
           "beantwoorden ze voor alle deelnemers tegelijk.")),
    ("h2", "Bijlage: vragenlijst"),
    ("ol", ["Gegevens van de onderneming: [naam, ondernemingsnummer, contactpersoon].",
            "Beschrijf kort een oplossing of aanpak voor de uitdaging.",
            "Is die oplossing al in gebruik, moet ze aangepast worden, of moet ze nog ontwikkeld worden?",
            "Geef een indicatie van de kosten en van de looptijd.",
            "Welke risico's ziet u, en wat heeft u van [naam bestuur] nodig?",
            "Welke delen van uw antwoord zijn vertrouwelijk?"]),
]

BESLISSINGSNOTA = [
    ("h1", "Beslissingsnota: keuze van de plaatsingsprocedure"),
    ("table", [["Bestuur", "[naam bestuur]"],
               ["Beslissend orgaan", ("college van burgemeester en schepenen [of het bevoegde orgaan volgens het "
                                      "Decreet over het lokaal bestuur en de delegatieregeling]")],
               ["Zitting", "[datum]"],
               ["Dossier", "[dossiernummer] – [onderwerp van de opdracht]"],
               ["Opgesteld door", "[naam], [dienst], [datum]"]]),
    ("note", ("Invulinstructie: vul elke sectie aan met feiten uit het dossier. Schrap in de sectie over de "
              "overwogen procedures wat niet past, en laat de motivering nalezen door de aankoopdienst of de "
              "juridische dienst.")),
    ("h2", "Context en behoefte"),
    ("ul", ["Aanleiding: [probleem of vraag die tot deze opdracht leidt]",
            "Functionele omschrijving: [wat moet beter, voor wie, en hoe meten we dat]",
            "Link met het meerjarenplan: [beleidsdoelstelling, actie]",
            "Betrokken diensten: [gebruikers, financiën, aankoop, informatieveiligheid, gegevensbescherming]",
            "Randvoorwaarden: [privacy, duurzaamheid, toegankelijkheid, koppeling met bestaande systemen]"]),
    ("h2", "Raming"),
    ("p", "Geraamde waarde van de volledige opdracht: [bedrag] euro exclusief btw."),
    ("ul", ["Looptijd: [aantal maanden of jaren]",
            "Opties, verlengingen en herhalingsopdrachten die in de opdrachtdocumenten staan: [bedrag]",
            "Premies of betalingen aan kandidaten of inschrijvers: [bedrag of niet van toepassing]",
            ("Bij een innovatiepartnerschap: maximale waarde van onderzoek en ontwikkeling over alle fasen plus de "
             "aankoop op het einde: [bedrag]"),
            "Basis van de raming: [eerdere opdrachten, marktconsultatie, offertes van vergelijkbare besturen]",
            "Budget: [budgetsleutel, bedrag in het meerjarenplan, eventuele cofinanciering]"]),
    ("p", ("De raming is exclusief btw, gemaakt over de hele looptijd en omvat opties en verlengingen. De opdracht "
           "is niet opgesplitst om onder een drempel te blijven. Op basis van deze raming is een [Belgische / "
           "Europese] bekendmaking nodig (zie de geldende drempels in art. 11 van het KB plaatsing van "
           "18 april 2017).")),
    ("h2", "Marktsituatie"),
    ("ul", ["Marktconsultatie (art. 51 van de wet van 17 juni 2016): [periode, werkvorm, aantal deelnemers]",
            "Belangrijkste inzichten: [wat de markt kan, prijsniveau, looptijd, risico's]",
            ("Besluit over de markt: [er bestaat al een oplossing / bestaande oplossingen moeten aangepast of "
             "gecombineerd worden / er bestaat nog geen oplossing]"),
            ("Maatregelen voor gelijke behandeling (art. 52): [samenvatting bij de opdrachtdocumenten, publicatie "
             "van vragen en antwoorden, voldoende lange termijnen]")]),
    ("h2", "Overwogen procedures"),
    ("note", ("Geef per procedure aan of ze past en waarom. Bedragen zijn ramingen exclusief btw; controleer het "
              "geldende bedrag in de geconsolideerde tekst op de dag dat de procedure start.")),
    ("table", [["Procedure", "Rechtsgrond", "Past voor dit dossier? Waarom?"],
               ["Opdracht bij aanvaarde factuur", "art. 92 (raming lager dan 30.000 euro)", "[ja / nee, omdat ...]"],
               ["Onderhandelingsprocedure zonder voorafgaande bekendmaking",
                "art. 42, § 1, 1°, a) (raming lager dan 143.000 euro) of een andere grond van art. 42",
                "[ja / nee, omdat ...]"],
               ["Openbare of niet-openbare procedure", "standaardprocedure met bekendmaking", "[ja / nee, omdat ...]"],
               ["Mededingingsprocedure met onderhandeling", "art. 38 (grond uit art. 38 nodig)",
                "[ja / nee, omdat ...]"],
               ["Concurrentiegerichte dialoog", "art. 39 (grond uit art. 38 nodig)", "[ja / nee, omdat ...]"],
               ["Innovatiepartnerschap", "art. 2, 32° en art. 40", "[ja / nee, omdat ...]"],
               ["Precommercieel aankopen (PCP)", "buiten de wet onder de voorwaarden van art. 32",
                "[ja / nee, omdat ...]"]]),
    ("h2", "Gekozen procedure en rechtsgrond"),
    ("p", ("Voorstel: de opdracht plaatsen via [procedure] op grond van [artikel] van de wet van 17 juni 2016 "
           "inzake overheidsopdrachten.")),
    ("p", ("Motivering: [waarom deze procedure het best past bij de behoefte en de marktsituatie]. Gebruik de "
           "aanwijzing die bij de gekozen procedure hoort:")),
    ("ul", [("Mededingingsprocedure met onderhandeling (art. 38) of concurrentiegerichte dialoog (art. 39): noem de "
             "grond uit art. 38, bijvoorbeeld dat bestaande oplossingen aangepast moeten worden, dat de opdracht "
             "een ontwerp of innovatieve oplossingen omvat, dat ze wegens haar complexiteit of risico's niet zonder "
             "onderhandelingen kan worden gegund, of dat de technische specificaties niet nauwkeurig genoeg kunnen "
             "worden vastgelegd."),
            ("Innovatiepartnerschap (art. 2, 32° en art. 40): toon aan dat de behoefte niet kan worden ingevuld met "
             "wat al op de markt te koop is, en dat het bestuur het resultaat na de ontwikkeling wil aankopen."),
            ("PCP (art. 32): leg uit dat het om diensten voor onderzoek en ontwikkeling gaat, waarbij resultaten en "
             "kosten met de bedrijven gedeeld worden, en dat een latere aankoop een afzonderlijke procedure onder de "
             "wet vraagt."),
            ("Onderhandelingsprocedure zonder voorafgaande bekendmaking (art. 42): vermeld de raming en de "
             "ingeroepen grond, en welke ondernemingen je uitnodigt en waarom.")]),
    ("p", ("Gunningscriteria en weging: [criteria]. Na een concurrentiegerichte dialoog en bij een "
           "innovatiepartnerschap wordt uitsluitend gegund op basis van de beste prijs-kwaliteitverhouding.")),
    ("h2", "Volgende stappen"),
    ("ol", ["Goedkeuring van de opdrachtdocumenten door [orgaan] op [datum].",
            "Bekendmaking of uitnodiging via het e-Procurementplatform op [datum].",
            "Selectie van de kandidaten en, waar de procedure dat toelaat, onderhandelingen of dialoog: [periode].",
            "Gunningsbeslissing door [orgaan] op [datum], met een gemotiveerde vergelijking van de offertes.",
            "Start van de uitvoering op [datum] en evaluatie op [momenten]."]),
    ("p", ("Voorstel van beslissing: het college [keurt de keuze voor de hierboven gemotiveerde procedure goed / "
           "vraagt bijkomend onderzoek naar ...] en belast [dienst] met de uitvoering.")),
]

CHECKLIST = [
    ("h1", "Checklist documenten innovatiepartnerschap"),
    ("p", "[naam bestuur] – dossier [dossiernummer] – bijgewerkt op [datum]"),
    ("p", ("Gebruik: vink af wat klaar is en noteer wie elk document opvolgt. Het innovatiepartnerschap is omschreven "
           "in art. 2, 32° en geregeld in art. 40 van de wet van 17 juni 2016.")),
    ("h2", "Voorbereiding"),
    ("ul", ["Functionele omschrijving van de behoefte, met meetbare doelstellingen",
            ("Verslag en samenvatting van de marktconsultatie (art. 51), waaruit blijkt dat wat op de markt te koop "
             "is de behoefte niet invult"),
            ("Lijst van ondernemingen die bij de voorbereiding betrokken waren en van de genomen maatregelen "
             "(art. 52)"),
            ("Raming exclusief btw: maximale waarde van onderzoek en ontwikkeling over alle fasen, plus de aankoop "
             "op het einde, met opties en verlengingen"),
            "Budget in het meerjarenplan en eventuele cofinanciering (bijvoorbeeld via PIO)",
            "Beslissingsnota over de keuze van de procedure en beslissing van het bevoegde orgaan"]),
    ("h2", "Aankondiging en selectie"),
    ("ul", ["Aankondiging van opdracht (Belgisch of Europees, volgens de raming)",
            ("Selectieleidraad met criteria over capaciteit voor onderzoek en ontwikkeling en ervaring met "
             "innovatieve oplossingen (art. 40)"),
            "Vooraf bekendgemaakte regels om het aantal kandidaten te beperken (in principe minstens drie)",
            "Termijn voor aanvragen tot deelneming (minstens 30 dagen bij een Europese bekendmaking)",
            "Selectieverslag en selectiebeslissing"]),
    ("h2", "Opdrachtdocumenten"),
    ("ul", ["Beschrijving van de behoefte en waarom bestaande oplossingen niet volstaan (art. 40)",
            "Minimumeisen waaraan elke offerte moet voldoen (niet onderhandelbaar)",
            "Gunningscriteria en weging, op basis van de beste prijs-kwaliteitverhouding",
            "Fasen met tussentijdse doelstellingen en de vergoeding in schijven (art. 40)",
            "Voorwaarden waaronder het bestuur na een fase kan stoppen of het aantal partners kan verminderen",
            ("Regeling voor de intellectuele eigendom (verplicht volgens art. 40), de data en de gebruiksrechten, "
             "ook bij stopzetting"),
            "Keuze voor één partner of meerdere partners",
            "Prestatieniveaus en maximumkosten die het resultaat moet halen voor de aankoop",
            "Privacy en informatieveiligheid (AVG), open standaarden en een exit-regeling",
            "Afspraken over vertrouwelijkheid tussen de partners"]),
    ("h2", "Onderhandelingen en gunning"),
    ("ul", ["Uitnodiging om een eerste offerte in te dienen, in de vorm van een onderzoeks- en innovatieproject",
            "Onderhandelingsplan: team, agenda en verklaringen over belangenconflicten",
            "Verslag van elke onderhandelingsronde, bevestigd door de inschrijver",
            "Schriftelijke mededeling van wijzigingen aan alle inschrijvers die nog meedoen",
            "Uitnodiging voor de definitieve offerte (daarover wordt niet meer onderhandeld)",
            "Gunningsverslag en gemotiveerde gunningsbeslissing",
            "Brief aan alle inschrijvers over het resultaat"]),
    ("h2", "Uitvoering per fase"),
    ("ul", ["Planning van de fasen met go/no-go-momenten",
            "Evaluatieverslag per fase, getoetst aan de tussentijdse doelstellingen",
            "Beslissing per fase: verdergaan, stoppen of het aantal partners verminderen",
            "Betaling van de schijven per fase",
            "Opvolging van intellectuele eigendom en data"]),
    ("h2", "Aankoop en evaluatie"),
    ("ul", ["Vaststelling dat de prestatieniveaus en maximumkosten gehaald zijn",
            ("Toets van de evenredigheid: de waarde van de aankoop staat niet buiten verhouding tot de investering "
             "in de ontwikkeling"),
            "Eindevaluatie en gedeelde lessen, bijvoorbeeld in een collegagroep van aankopers",
            "Volledig en gearchiveerd dossier"]),
]


def build_docx(blocks: list, *, title: str, subject: str) -> bytes:
    """A Word document: disclaimer first, then the blocks with the built-in Heading 1/2 and list styles."""
    import docx
    from docx.oxml.ns import qn
    from docx.shared import Pt, RGBColor

    document = docx.Document()
    _drop_unused_parts(document)
    _docx_language(document, qn)
    props = document.core_properties
    props.title = title
    props.subject = subject
    props.author = AUTHOR
    props.last_modified_by = AUTHOR
    props.keywords = "Vraagbaak; voorbeeldinhoud; sjabloon; overheidsopdrachten"
    props.comments = "Voorbeeldinhoud, geen juridisch advies."
    props.language = "nl-BE"
    props.category = "sjabloon"
    props.created = VERSION
    props.modified = VERSION
    props.last_printed = VERSION
    props.revision = 1

    intro = document.add_paragraph()
    run = intro.add_run(DISCLAIMER)
    run.bold = True
    for kind, content in blocks:
        if kind in ("h1", "h2"):
            document.add_heading(content, level=int(kind[1]))
        elif kind == "p":
            document.add_paragraph(content)
        elif kind == "note":
            run = document.add_paragraph().add_run(content)
            run.italic = True
            run.font.size = Pt(10)
            run.font.color.rgb = RGBColor(0x59, 0x59, 0x59)
        elif kind == "ul":
            for item in content:
                document.add_paragraph(item, style="List Bullet")
        elif kind == "ol":
            num_id = _restarted_numbering(document)
            for item in content:
                paragraph = document.add_paragraph(item, style="List Number")
                num_pr = paragraph._p.get_or_add_pPr().get_or_add_numPr()
                num_pr.get_or_add_ilvl().val = 0
                num_pr.get_or_add_numId().val = num_id
        elif kind == "table":
            table = document.add_table(rows=0, cols=len(content[0]))
            table.style = "Table Grid"
            for row in content:
                cells = table.add_row().cells
                for cell, text in zip(cells, row, strict=True):
                    cell.text = text
        else:
            raise ValueError(f"unknown block {kind!r}")
    out = io.BytesIO()
    document.save(out)
    return _fixed_zip(out.getvalue())


_UNUSED_RELTYPES = ("/metadata/thumbnail", "/stylesWithEffects", "/relationships/customXml")
"""Parts of python-docx's default template a template does not need: a thumbnail of an empty page, Word 2010's
copy of the styles and an empty bibliography store. Dropping them keeps each file well under 40 KB."""


def _drop_unused_parts(document) -> None:
    for rels in (document.part.package.rels, document.part.rels):
        for r_id in [r_id for r_id, rel in rels.items() if rel.reltype.endswith(_UNUSED_RELTYPES)]:
            rels.pop(r_id)


def _restarted_numbering(document) -> int:
    """A new numbering instance of the "List Number" style that starts at 1, so each numbered list restarts."""
    style = document.styles["List Number"]
    style_num_id = style.element.pPr.numPr.numId.val
    numbering = document.part.numbering_part.element
    abstract_id = numbering.num_having_numId(style_num_id).abstractNumId.val
    num = numbering.add_num(abstract_id)
    num.add_lvlOverride(ilvl=0).add_startOverride(1)
    return num.numId


def _docx_language(document, qn) -> None:
    """Mark the document's default text language as Dutch (Belgium), so spelling checks use Dutch."""
    from docx.oxml import OxmlElement

    defaults = document.styles.element.find(qn("w:docDefaults"))
    rpr = defaults.find(qn("w:rPrDefault")).find(qn("w:rPr"))
    lang = rpr.find(qn("w:lang"))
    if lang is None:
        lang = OxmlElement("w:lang")
        rpr.append(lang)
    lang.set(qn("w:val"), "nl-BE")


def build_odt(blocks: list, *, title: str, subject: str) -> bytes:
    """An OpenDocument text: disclaimer first, then headings (text:h) and checkbox lists (text:list)."""
    from odf import dc, meta
    from odf.opendocument import OpenDocumentText
    from odf.style import ListLevelProperties, ParagraphProperties, Style, TextProperties
    from odf.text import H, List, ListItem, ListLevelStyleBullet, ListLevelStyleNumber, ListStyle, P

    document = OpenDocumentText()
    stamp = VERSION.strftime("%Y-%m-%dT%H:%M:%S")
    document.meta.addElement(dc.Title(text=title))
    document.meta.addElement(dc.Subject(text=subject))
    document.meta.addElement(dc.Description(text="Voorbeeldinhoud, geen juridisch advies."))
    document.meta.addElement(dc.Language(text="nl-BE"))
    document.meta.addElement(meta.InitialCreator(text=AUTHOR))
    document.meta.addElement(dc.Creator(text=AUTHOR))
    document.meta.addElement(meta.CreationDate(text=stamp))
    document.meta.addElement(dc.Date(text=stamp))

    default = Style(name="Standard", family="paragraph")
    default.addElement(TextProperties(fontsize="11pt", language="nl", country="BE"))
    default.addElement(ParagraphProperties(marginbottom="0.2cm"))
    document.styles.addElement(default)
    headings = {}
    for level, size in ((1, "16pt"), (2, "13pt")):
        style = Style(name=f"Heading_20_{level}", displayname=f"Heading {level}", family="paragraph",
                      parentstylename="Standard", nextstylename="Standard", defaultoutlinelevel=str(level))
        style.addElement(TextProperties(fontsize=size, fontweight="bold"))
        style.addElement(ParagraphProperties(margintop="0.4cm", marginbottom="0.2cm", keepwithnext="always"))
        document.styles.addElement(style)
        headings[level] = style
    strong = Style(name="Disclaimer", family="paragraph", parentstylename="Standard")
    strong.addElement(TextProperties(fontweight="bold"))
    document.styles.addElement(strong)

    checks = ListStyle(name="Checklist")
    level_style = ListLevelStyleBullet(level=1, bulletchar="☐")
    level_style.addElement(ListLevelProperties(spacebefore="0.3cm", minlabelwidth="0.6cm"))
    checks.addElement(level_style)
    document.automaticstyles.addElement(checks)
    numbers = ListStyle(name="Numbers")
    number_style = ListLevelStyleNumber(level=1, numformat="1", numsuffix=".")
    number_style.addElement(ListLevelProperties(spacebefore="0.3cm", minlabelwidth="0.6cm"))
    numbers.addElement(number_style)
    document.automaticstyles.addElement(numbers)

    document.text.addElement(P(stylename=strong, text=DISCLAIMER))
    for kind, content in blocks:
        if kind in ("h1", "h2"):
            level = int(kind[1])
            document.text.addElement(H(outlinelevel=level, stylename=headings[level], text=content))
        elif kind in ("p", "note"):
            document.text.addElement(P(stylename=default, text=content))
        elif kind in ("ul", "ol"):
            listing = List(stylename=checks if kind == "ul" else numbers)
            for item in content:
                entry = ListItem()
                entry.addElement(P(stylename=default, text=item))
                listing.addElement(entry)
            document.text.addElement(listing)
        else:
            raise ValueError(f"unknown block {kind!r} for ODT")
    out = io.BytesIO()
    document.write(out)
    return _fixed_zip(out.getvalue())


def _fixed_zip(data: bytes) -> bytes:
    """The same ZIP package with every entry dated VERSION, so identical content gives identical bytes."""
    stamp = VERSION.timetuple()[:6]
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", compresslevel=9) as target:
        for info in source.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=stamp)
            fixed.compress_type = info.compress_type
            fixed.external_attr = 0o644 << 16
            target.writestr(fixed, source.read(info.filename))
    return out.getvalue()


TEMPLATES = {
    "aankondiging-marktconsultatie.docx": (build_docx, MARKTCONSULTATIE,
                                           "Sjabloon aankondiging marktconsultatie (voorbeeldinhoud)",
                                           "Voorafgaande marktconsultatie, art. 51 van de wet van 17 juni 2016"),
    "beslissingsnota-keuze-procedure.docx": (build_docx, BESLISSINGSNOTA,
                                             "Sjabloon beslissingsnota keuze van de procedure (voorbeeldinhoud)",
                                             "Motivering van de keuze van de plaatsingsprocedure"),
    "checklist-innovatiepartnerschap.odt": (
        build_odt, CHECKLIST, "Checklist documenten innovatiepartnerschap (voorbeeldinhoud)",
        "Innovatiepartnerschap, art. 2, 32° en art. 40 van de wet van 17 juni 2016"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="folder to write to (default: this script's folder)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, (build, blocks, title, subject) in TEMPLATES.items():
        data = build(blocks, title=title, subject=subject)
        (args.out / name).write_bytes(data)
        print(f"{name}: {len(data)} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
