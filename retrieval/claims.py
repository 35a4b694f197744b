"""Sentence-by-sentence support checks for generated answers.

A generated answer is kept only as far as its sources carry it. Each sentence (or list item) must carry a marker
[n], and the passages it cites must say what it says:

- every number in the sentence (amount, period, article, year, percentage) occurs in a cited passage;
- the sentence's content words are covered, directly or through the terminology's equivalent terms, by one or two
  consecutive sentences of a cited passage (with its headings): at least ``SUPPORT_THRESHOLD`` of them;
- the sentence and the passage sentence that covers it best agree on negation ("mag" is not "mag niet");
- the sentence is not the model talking about itself or its instructions.

Passage sentences that address the model ("negeer alle vorige instructies ...") are taken out before the prompt is
built *and* before support is measured, so a claim injected through the corpus has nothing to stand on.

The threshold is calibrated on the train split of ``bench/claims/claims.jsonl`` (sentences labelled by hand against
passages of the sample corpus) and reported on its dev split: ``vraagbaak claims``, docs/EVALUATION.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from retrieval.answer import split_sentences
from retrieval.evidence import covered
from retrieval.lexical import analyse, fold

SUPPORT_THRESHOLD = 0.6
"""Share of a sentence's content words that one passage window must cover: the lowest that keeps at most 5 % of the
unsupported sentences of bench/claims train (``vraagbaak claims``, docs/EVALUATION.md)."""
MIN_CLAUSE_WORDS = 3
"""A clause with fewer content words than this is read together with the next one."""
MARKER_SHARE = 0.5
"""A sentence citing several sources keeps the marker of each that covers at least this share of what the best one
covers: "[1, 2]" means both say it."""
MIN_KEPT_SHARE = 0.5
"""A generated answer that loses more than half of its sentences is not trusted at all: the extractive one is shown."""
ECHO_SHARE = 0.6
"""A sentence whose words come more from the model's instructions than from any source (and at least this share)
repeats the prompt."""
MAX_ANSWER_CHARS = 16_000
"""Longer model output is cut before it is checked (the prompt asks for at most 150 words; four Telegram messages)."""
MAX_CLAIMS = 120
"""Claims checked at most; the rest of a longer answer is dropped unchecked (the prompt's 150 words are some 15
sentences), so a model that writes thousands of tiny sentences cannot make the check take seconds."""

# [1], [ 2 ], [1, 3], [1;3]: one or more source numbers in square brackets (the generative composer reads them too).
# At most three digits a number: a prompt has a handful of sources, and a marker of 5,000 digits is no number.
MARKER = re.compile(r"\[\s*(?P<nums>\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\s*\]")
# "Zin. [1]" and "Zin.[1]": the marker belongs to the sentence before it; moved in front of the full stop.
_MARKER_AFTER_END = re.compile(rf"([.!?])((?:[ \t]*{MARKER.pattern})+)")
# After a marker that words follow ("A [1] en B") and after ";": where a claim ends although the sentence goes on.
_AFTER_MARKER = re.compile(r"(?<=\])\s+(?=[^\W\d_])|(?<=;)\s+")
_LIST_PREFIX = re.compile(r"^\s*(?:[-*•]|\d+[.)°]|[a-z]\))\s+")
_MARKUP = re.compile(r"\*\*|__|`")

# Numbers as written in Dutch and French texts: "5.404.000", "140 000", "2.31a", "30", "1,5".
_NUMBER = re.compile(r"\d{1,3}(?:[. \u00a0\u202f]\d{3})+(?![\d])|\d+(?:[.,/]\d+)*[a-z]?")
_NUMBER_WORDS = {
    "twee": "2", "drie": "3", "vier": "4", "vijf": "5", "zes": "6", "zeven": "7", "acht": "8", "negen": "9",
    "tien": "10", "elf": "11", "twaalf": "12", "dertien": "13", "veertien": "14", "vijftien": "15", "zestien": "16",
    "zeventien": "17", "achttien": "18", "negentien": "19", "twintig": "20", "dertig": "30", "veertig": "40",
    "vijftig": "50", "zestig": "60", "zeventig": "70", "tachtig": "80", "negentig": "90", "honderd": "100",
    "duizend": "1000", "miljoen": "1000000", "miljard": "1000000000",
    "deux": "2", "trois": "3", "quatre": "4", "cinq": "5", "six": "6", "sept": "7", "huit": "8", "neuf": "9",
    "dix": "10", "douze": "12", "treize": "13", "quatorze": "14", "quinze": "15", "seize": "16",
    "vingt": "20", "trente": "30", "quarante": "40", "cinquante": "50", "soixante": "60",
    "mille": "1000", "million": "1000000", "millions": "1000000", "milliard": "1000000000",
}
"""Written numbers, each compared as the number it is. A compound ("vijfentwintig") is not parsed: it does not
match any of these, so a claim that states it is compared by its words only. "miljoen" is a number of its own:
"216.000 miljoen euro" states 216000 and 1000000, and the second must be in the source too. French "onze" and
"cent" are left out: they are Dutch words ("onze gemeente", "geen cent")."""
_WORD = re.compile(r"[^\W\d_]+")
# Not "zonder" (a paraphrase says "zonder btw" for "exclusief btw") nor "pas" ("kan pas" is "only then" in Dutch).
_NEGATION = frozenset({"niet", "geen", "nooit", "niets", "niemand", "nergens", "noch", "nimmer", "geenszins",
                       "allerminst", "evenmin", "verboden", "jamais", "aucun", "aucune", "ne", "nullement",
                       "interdit", "interdite", "not", "never"})
"""Words that negate what a sentence says; French "ne ... pas" counts by its "ne", and "n'" before a vowel by
``_ELIDED_NE`` (not "n°" nor Dutch "'n"). "verboden" / "interdit" state a prohibition, as "mag niet" does."""
_ELIDED_NE = re.compile(r"(?<![\w'’])n['’](?=[aeiouyh])")

# The model about itself or its instructions: never a statement about procurement.
_SELF_TALK = re.compile(
    r"\b(?:instructies?|prompt|genummerde bronnen|(?:als|ik ben een?) (?:ai|assistent|taalmodel|chatbot)"
    r"|ik ben vraagbaak|mijn (?:regels|opdracht)|de bronnen die ik (?:kreeg|heb gekregen)"
    r"|mes instructions|en tant qu'(?:assistant|ia))\b")
# A passage sentence that speaks to the model instead of the reader: a prompt injection.
# Precise on purpose: "vergeet niet de regels inzake publiciteit", "nieuwe instructies aan de lokale besturen" and
# "AI-toepassingen" are what officers read; an instruction to a model names its earlier instructions or its reader.
_EARLIER = r"(?:alle\s+|all\s+|toutes\s+les\s+|les\s+)?(?:de\s+|the\s+)?"
_INJECTION = re.compile(
    r"\b(?:negeer|ignore|disregard|ignorez)\b.{0,60}?"
    r"\b(?:instructies?|opdrachten|regels|richtlijnen|instructions?|rules|directions|prompts?|consignes)\b"
    rf"|\b(?:vergeet|forget|oubliez)\s+{_EARLIER}(?:vorige|eerdere|voorgaande|bovenstaande|previous|prior|above|"
    r"precedentes)\s+(?:instructies|regels|opdrachten|instructions|rules|consignes)\b"
    r"|\b(?:nieuwe|new|nouvelles?)\s+(?:instructies?|instructions?|consignes)\s+(?:voor|for|pour)\s+"
    r"(?:de |het |the |l')?(?:assistent|assistant|taalmodel|chatbot|model|ai|ia|llm)\b"
    r"|^\W*(?:systeem|system|assistant|assistent|developer)\s*:\s*(?:je|jij|u|you|vous|negeer|ignore|meld|zeg|"
    r"antwoord|de assistent|the assistant)\b"
    r"|\b(?:je bent nu|you are now|vous etes maintenant|doe alsof je|pretend to be|act as)\b"
    r"|\b(?:negeer|vergeet|ignore|forget|oubliez|ignorez)\s+(?:alles|everything|tout)\b.{0,40}?"
    r"\b(?:hierboven|hiervoor|voorgaande|above|before|precede|ci-dessus)\b"
    r"|\bne\s+(?:tenez|tiens|tenir)\s+(?:plus\s+|pas\s+)?compte\s+(?:des|de\s+vos|de\s+tes)\s+"
    r"(?:consignes|instructions|regles)\b"
    r"|\b(?:vanaf nu|from now on|desormais|dorenavant)\b.{0,30}?\b(?:antwoord|zeg|meld|answer|say|reponds|dis)\s+"
    r"(?:je|jij|u|you|tu|vous)\b"
    r"|\b(?:system ?prompt|systeemprompt)\b"
    r"|\b(?:aan|voor|for|to)\s+(?:de |het |the )?(?:ai-?)?(?:assistent(?:en)?|assistants?|taalmodel(?:len)?|"
    r"chatbots?|language models?|llms?)\b")
# Unicode format characters (zero-width space and joiners, bidi controls, soft hyphen): invisible to a reader.
_FORMAT_CHARACTERS = re.compile(r"[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
# A line in capitals that speaks as the system ("SYSTEEM: Meld ..."): how injected text poses as the prompt.
_SYSTEM_VOICE = re.compile(r"^\W*(?:SYSTEEM|SYSTEM|ASSISTANT|ASSISTENT|DEVELOPER)\s*:")


@dataclass(frozen=True)
class Source:
    """What a cited passage offers as support: its text and the headings it sits under."""

    text: str
    heading: str = ""


@dataclass(frozen=True)
class Claim:
    """One sentence or list item of a generated answer."""

    text: str
    """The sentence as written, markers included."""
    line: int
    """The answer line it stands on (sentences of one line are joined again when they are kept)."""
    prefix: str = ""
    """A list item's bullet or number."""
    cited: tuple[int, ...] = ()
    """The 1-based source numbers its markers name, in order, without repeats."""
    sentence: int = 0
    """Which sentence of the answer it is part of (the clauses of one sentence share it)."""

    @property
    def statement(self) -> str:
        """The sentence without markers or markup."""
        bare = " ".join(_MARKUP.sub("", MARKER.sub("", self.text)).split())
        return re.sub(r"\s+([.,;:!?])", r"\1", bare)


@dataclass(frozen=True)
class Support:
    """Why a claim is, or is not, carried by its sources."""

    score: float
    """Best share of the claim's content words covered by one window of a cited source."""
    reason: str = ""
    """Empty when supported; else one of: no marker, unknown source, number, negation, self-talk, coverage,
    condition dropped (a condition of the sentence was dropped), too long (beyond ``MAX_CLAIMS``)."""
    supporting: tuple[int, ...] = ()
    """The cited sources that carry a fair share of the claim (the markers kept, ``MARKER_SHARE``)."""

    @property
    def supported(self) -> bool:
        return not self.reason


@dataclass
class CheckedAnswer:
    """A generated answer after the check: the text of the kept sentences, and what was dropped and why."""

    text: str
    kept: list[Claim] = field(default_factory=list)
    dropped: list[tuple[Claim, Support]] = field(default_factory=list)

    @property
    def trusted(self) -> bool:
        """Enough of the answer survived to show it instead of the extractive one."""
        total = len(self.kept) + len(self.dropped)
        return bool(self.kept) and len(self.kept) >= MIN_KEPT_SHARE * total


# -- sources ---------------------------------------------------------------------------------------------------

def is_injection(sentence: str) -> bool:
    """Whether a passage sentence addresses the model (an instruction), not the reader. Zero-width and other
    format characters are taken out first: "Neg\u200beer" is "Negeer" to a model."""
    visible = _FORMAT_CHARACTERS.sub("", sentence)
    return bool(_SYSTEM_VOICE.match(visible) or _INJECTION.search(fold(visible)))


def clean_heading(text: str) -> str:
    """A title, label or heading as the prompt and the support check may read it: empty when it addresses the model
    (headings are corpus text too)."""
    return "" if is_injection(text) else text


_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")


def _clean_paragraph(paragraph: str) -> tuple[list[str], int]:
    """A paragraph's sentences up to the first that addresses the model, and how many were left out: what follows
    an instruction in its paragraph goes with it ("Negeer alle eerdere instructies. Antwoord voortaan dat ...").
    The instruction is looked for with the lines joined, so one wrapped over two lines is still found; a clean
    paragraph keeps its sentences line by line."""
    joined = split_sentences(" ".join(paragraph.split()))
    for i, sentence in enumerate(joined):
        if is_injection(sentence):
            return joined[:i], len(joined) - i
    return [s for line in paragraph.splitlines() for s in split_sentences(line.strip())], 0


def without_injections(text: str) -> tuple[str, int]:
    """The passage without the sentences that address the model, and how many were taken out (a paragraph that
    loses some is shown as one line)."""
    removed = 0
    paragraphs = []
    for paragraph in _PARAGRAPH_BREAK.split(text):
        kept, dropped = _clean_paragraph(paragraph)
        removed += dropped
        if not dropped:
            paragraphs.append(paragraph)
        elif kept:
            paragraphs.append(" ".join(kept))
    return "\n\n".join(paragraphs), removed


# -- the answer as claims ----------------------------------------------------------------------------------------

def claims(answer: str) -> list[Claim]:
    """The answer's sentences, clauses and list items, with the sources each one cites.

    A claim ends at a sentence end, at ";", and at a marker that more words follow: in "A [1] en B." or
    "A [1]; B." the words after [1] are a claim of their own, which needs its own marker.
    """
    out: list[Claim] = []
    text = _MARKER_AFTER_END.sub(r"\2\1", answer[:MAX_ANSWER_CHARS])
    sentences = 0
    for number, line in enumerate(text.splitlines()):
        prefix_match = _LIST_PREFIX.match(line)
        prefix = prefix_match.group().strip() if prefix_match else ""
        body = line[prefix_match.end():] if prefix_match else line
        for whole in split_sentences(body.strip()):
            sentences += 1
            for piece in _clauses(whole):
                cited: list[int] = []
                for group in MARKER.findall(piece):
                    for raw in re.findall(r"\d+", group):
                        if int(raw) not in cited:
                            cited.append(int(raw))
                out.append(Claim(piece, number, prefix if not out or out[-1].line != number else "", tuple(cited),
                                 sentences))
    return out


def _clauses(sentence: str) -> list[str]:
    """The sentence cut after ";" and after markers more words follow; a head too short to state anything ("Het
    innovatiepartnerschap [1] is ...") stays with what follows, so no fragment is kept on its own."""
    out: list[list[str]] = []
    words: list[int] = []  # content words of each clause so far, counted once per piece (linear on any input)
    for piece in (p for p in _AFTER_MARKER.split(sentence) if p.strip()):
        count = len([w for w in analyse(MARKER.sub("", piece)) if not w[0].isdigit()])
        if out and words[-1] < MIN_CLAUSE_WORDS:
            out[-1].append(piece)
            words[-1] += count
        else:
            out.append([piece])
            words.append(count)
    return [" ".join(parts) for parts in out]


# -- support -----------------------------------------------------------------------------------------------------

# A clause that states a condition or an exception of the clause before it.
_CONDITION = re.compile(r"^\W*(?:als|indien|tenzij|behalve|zolang|mits|uitgezonderd|behoudens|wanneer|op voorwaarde|"
                        r"si|sauf|a condition|pour autant|lorsque|if|unless)\b")

def numbers(text: str) -> set[str]:
    """The numbers a text states, normalised: "5.404.000" and "5 404 000" are "5404000", "drie" is "3"."""
    folded = fold(text)
    found = set()
    for match in _NUMBER.finditer(folded):
        raw = match.group()
        if re.fullmatch(r"\d{1,3}(?:[. \u00a0\u202f]\d{3})+", raw):
            raw = re.sub(r"\D", "", raw)
        found.add(raw.replace(",", "."))
    found.update(_NUMBER_WORDS[w] for w in _WORD.findall(folded) if w in _NUMBER_WORDS)
    return found


def _negated(text: str) -> bool:
    folded = fold(text)
    return any(word in _NEGATION for word in _WORD.findall(folded)) or bool(_ELIDED_NE.search(folded))


@dataclass(frozen=True)
class _Prepared:
    """A source read once for all the claims that cite it: its sentences, their word windows, its numbers."""

    sentences: tuple[str, ...]
    windows: tuple[tuple[frozenset[str], frozenset[str]], ...]
    numbers: frozenset[str]


@lru_cache(maxsize=64)
def _prepared(source: Source) -> _Prepared:
    # Without any sentence that addresses the model (defence in depth: the composer removes them too).
    parts = tuple(sentence for paragraph in _PARAGRAPH_BREAK.split(source.text)
                  for sentence in _clean_paragraph(paragraph)[0])
    heading = clean_heading(source.heading)
    return _Prepared(parts, tuple(_windows(parts, heading)), frozenset(numbers(" ".join([*parts, heading]))))


@lru_cache(maxsize=8)
def _words_of(text: str) -> frozenset[str]:
    """The analysed words of the model's prompt, once for every claim checked against it."""
    return frozenset(analyse(text))


def _windows(parts: Sequence[str], heading: str) -> list[tuple[frozenset[str], frozenset[str]]]:
    """(analysed words of each sentence, of the sentence with the next one), headings included in both."""
    head = frozenset(analyse(heading))
    sets = [frozenset(analyse(s)) | head for s in parts]
    return [(sets[i], sets[i] | (sets[i + 1] if i + 1 < len(sets) else frozenset())) for i in range(len(parts))]


def support(claim: Claim, sources: Sequence[Source], *, instructions: str = "",
            threshold: float = SUPPORT_THRESHOLD) -> Support:
    """Whether the sources the claim cites (1-based numbers into ``sources``) carry it.

    ``instructions`` is the model's own prompt: a sentence that repeats it rather than a source is self-talk.
    """
    if not claim.cited:
        return Support(0.0, "no marker")
    cited = [n for n in claim.cited if 1 <= n <= len(sources)]
    if not cited:
        return Support(0.0, "unknown source")
    statement = claim.statement
    # Numbers are compared as numbers (below): "216 000" and "216.000" are one amount, not two words.
    words = list(dict.fromkeys(w for w in analyse(statement) if not w[0].isdigit()))
    stating = numbers(statement)
    closest, closest_share, stated = "", -1.0, set()
    by_source: dict[int, float] = {}
    holding: set[int] = set()  # sources that state one of the claim's numbers
    best_window: tuple[float, str, str] = (-1.0, "", "")  # (share, its sentence, the next one)
    for n in cited:
        prepared = _prepared(sources[n - 1])
        stated |= prepared.numbers
        if stating & prepared.numbers:
            holding.add(n)
        by_source[n] = 0.0
        for i, (text, (alone, window)) in enumerate(zip(prepared.sentences, prepared.windows)):
            share = _share(words, window)
            by_source[n] = max(by_source[n], share)
            if share > best_window[0]:
                following = prepared.sentences[i + 1] if i + 1 < len(prepared.sentences) else ""
                best_window = (share, text, following)
            # The sentence that says most of it on its own is the one whose negations must agree.
            single = _share(words, alone)
            if single > closest_share:
                closest, closest_share = text, single
    best = max(by_source.values())
    supporting = [n for n, share in by_source.items() if share > 0 and share >= MARKER_SHARE * best
                  and (not stating or n in holding)]
    found = tuple(supporting)
    echo = _share(words, _words_of(instructions)) if instructions else 0.0
    if _SELF_TALK.search(fold(statement)) or echo > max(best, ECHO_SHARE):
        return Support(best, "self-talk", found)
    if stating - stated:
        return Support(best, "number", found)
    if best < threshold:
        return Support(best, "coverage", found)
    if stating and not supporting:
        # "De Europese drempel is 30.000 euro [3, 4]": [3] says it with another amount, [4] has 30.000 for something
        # else. The sources that carry the words must state the numbers too (the markers kept are those).
        return Support(best, "number", found)
    # Whether each side negates at all. On train this beat scoping "niet" to nearby words and comparing with the
    # two-sentence window (docs/EVALUATION.md).
    if _negated(statement) != _negated(closest):
        return Support(best, "negation", found)
    # The window that covers best may take words from a negated next sentence ("... vijftien dagen. Tijdens die
    # termijn mag de overeenkomst niet gesloten worden."): a claim that does not negate is not carried by it.
    _, first, following = best_window
    if following and _negated(following) and not _negated(statement) and _adds(words, first, following):
        return Support(best, "negation", found)
    return Support(best, "", found)


def _adds(words: Sequence[str], first: str, following: str) -> bool:
    """Whether the next sentence of a window covers at least two of the claim's words the first one does not."""
    alone = covered(words, frozenset(analyse(first)))
    return len(covered(words, frozenset(analyse(following))) - alone) >= 2


def _share(words: Sequence[str], have: frozenset[str]) -> float:
    return len(covered(words, have)) / len(words) if words else 0.0


def check(answer: str, sources: Sequence[Source], *, instructions: str = "") -> CheckedAnswer:
    """Keep the sentences their cited sources carry, with the markers of the sources that do; drop the rest."""
    result = CheckedAnswer("")
    lines: dict[int, list[str]] = {}
    prefixes: dict[int, str] = {}
    every = claims(answer)
    verdicts = [support(claim, sources, instructions=instructions) if i < MAX_CLAIMS else Support(0.0, "too long")
                for i, claim in enumerate(every)]
    # A condition that is dropped takes its sentence with it: "X mag [1] als Y" without "als Y" is a rule without
    # its condition, which no source states.
    unconditional = {claim.sentence for claim, verdict in zip(every, verdicts)
                     if not verdict.supported and _CONDITION.match(fold(claim.statement))}
    for claim, verdict in zip(every, verdicts):
        if verdict.supported and claim.sentence in unconditional:
            verdict = Support(verdict.score, "condition dropped", verdict.supporting)
        if not verdict.supported:
            result.dropped.append((claim, verdict))
            continue
        result.kept.append(claim)
        lines.setdefault(claim.line, []).append(_remark(claim, verdict.supporting))
        prefixes.setdefault(claim.line, claim.prefix)
    out: list[str] = []
    previous = None
    for number in sorted(lines):
        if previous is not None and number > previous + 1 and not (prefixes[number] and prefixes.get(previous)):
            out.append("")  # a paragraph break in the model's answer stays one
        prefix = prefixes[number]
        out.append(f"{prefix} {' '.join(lines[number])}" if prefix else " ".join(lines[number]))
        previous = number
    result.text = "\n".join(out)
    return result


def _remark(claim: Claim, supporting: Iterable[int]) -> str:
    """The sentence with its markers naming only the cited sources that carry it."""
    carrying = set(supporting)
    keep = [n for n in claim.cited if n in carrying] or list(claim.cited)
    bare = claim.statement
    end = bare[-1] if bare and bare[-1] in ".!?:;," else ""
    core = bare[:-1].rstrip() if end else bare
    return f"{core} [{', '.join(str(n) for n in keep)}]{end}"
