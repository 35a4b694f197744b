"""`vraagbaak tickets ...` and `vraagbaak experts ...`: the maintainer's view of the expert pool."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from pathlib import Path

import click

from common.vocabulary import GOVERNMENT_TYPES as CASE_TYPES
from common.vocabulary import PROCEDURES as CASE_PROCEDURES
from escalation.errors import EscalationError
from escalation.states import STATES

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def _safe(text: object) -> str:
    """Text from outside (an expert's mail, an officer's question) without terminal escapes or bidi controls,
    which could rewrite what the maintainer's terminal shows."""
    return _CONTROL.sub("\N{REPLACEMENT CHARACTER}", str(text))


def _when(timestamp: float | None) -> str:
    return dt.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M") if timestamp else "-"


def faq_path(home: Path) -> Path:
    """Where published expert answers go (the `expertenpool` source of the bundled manifest)."""
    return home / "faq" / "expert-answers.jsonl"


def cases_path(home: Path) -> Path:
    """Where published practice cases go (the source `gedeelde-praktijkvoorbeelden` of the bundled manifest)."""
    return home / "cases" / "shared-cases.jsonl"


@click.group("tickets")
def tickets_group() -> None:
    """Questions escalated to the expert pool."""


@tickets_group.command("list")
@click.option("--state", type=click.Choice(STATES), help="Only tickets in this state.")
@click.pass_obj
def list_command(app, state: str | None) -> None:
    """Tickets, newest first."""
    rows = app.tickets.store.list(state=state)
    if not rows:
        click.echo("No tickets.")
    for t in rows:
        start = t.question if len(t.question) <= 60 else t.question[:60] + " …"
        click.echo(f"{t.tag:<8} {t.state:<9} {_when(t.created_at)}  {t.topic:<22} {t.expert_name or '-':<20} "
                   f"{_safe(start)}")


@tickets_group.command("show")
@click.argument("number", type=int)
@click.pass_obj
def show_command(app, number: int) -> None:
    """One ticket in full, with the expert's answer."""
    try:
        t = app.tickets.store.get(number)
    except EscalationError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{t.tag}  state: {t.state}  topic: {t.topic}  channel: {t.channel}")
    click.echo(f"created {_when(t.created_at)}, due {_when(t.due_at)}, expert: {t.expert_name or '-'} "
               f"<{t.expert_email or '-'}>")
    click.echo(f"reason: {_safe(t.reason)}\n\nQuestion:\n{_safe(t.question)}")
    if t.sources:
        click.echo("\nSources found by Vraagbaak:")
        for n, s in enumerate(t.sources, 1):
            parts = (s.get("title"), s.get("label"), s.get("url"))
            click.echo(f"  [{n}] " + " — ".join(_safe(x) for x in parts if x))
    if t.answered_at is not None:
        click.echo(f"\nAnswer by {_safe(t.answered_by)} on {_when(t.answered_at)}:\n"
                   f"{_safe(t.answer) if t.answer else '(none in the text: see the attachments)'}")
    files = app.tickets.store.attachments_of(number)
    if files:
        click.echo("\nAttachments (passed on to the officer):")
        for f in files:
            click.echo(f"  {_safe(f.name)}  {f.size} bytes  {f.content_type}  "
                       f"{app.tickets.attachments_dir / f.path.name}")
    for row in app.tickets.store.inbound_for(number):
        if row["status"] == "accepted" and row["reason"]:
            click.echo(f"Not passed on from the mail of {_when(row['received_at'])}: {_safe(row['reason'])}")
    queued = [m for m in app.tickets.store.due_mails(include_future=True) if m.ticket == number]
    if queued:
        click.echo(f"\n{len(queued)} mail(s) still queued (see `vraagbaak tickets retry`).")


def _deliver(app) -> int:
    """Push waiting answers through the configured chat channels, then release the channels' connections."""
    channels = app.deliverers()
    try:
        return asyncio.run(app.tickets.deliver(channels))
    finally:
        for channel in channels.values():
            close = getattr(channel, "close", None)
            if close is not None:
                close()


@tickets_group.command("retry")
@click.pass_obj
def retry_command(app) -> None:
    """Send every queued mail now, whatever its backoff."""
    if app.tickets.mailer is None:
        raise click.ClickException("no SMTP server configured (VRAAGBAAK_SMTP_HOST); mails stay queued")
    sent, failed = app.tickets.send_outbox(include_future=True)
    click.echo(f"{sent} sent, {failed} failed.")
    if failed:
        raise click.exceptions.Exit(1)


@tickets_group.command("ingest")
@click.argument("eml", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def ingest_command(app, eml: Path) -> None:
    """Process one expert reply saved as an .eml file (as if it arrived over IMAP)."""
    result = app.tickets.ingest(eml.read_bytes())
    _deliver(app)
    ticket = f"VB-{result.ticket}" if result.ticket else "no ticket"
    click.echo(f"{result.status}: {ticket}" + (f" ({_safe(result.reason)})" if result.reason else ""))
    if result.status in ("rejected", "quarantined"):
        raise click.exceptions.Exit(1)


@tickets_group.command("quarantine")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.pass_obj
def quarantine_command(app, limit: int) -> None:
    """Inbound mails held back (quarantined: possibly an answer, not trusted or not readable) or rejected."""
    rows = app.tickets.quarantined(limit=limit)
    if not rows:
        click.echo("Nothing in quarantine.")
    for row in rows:
        ticket = f"VB-{row['ticket']}" if row["ticket"] else "-"
        click.echo(f"{row['key']}  {row['status']:<11} {_when(row['received_at'])}  {ticket:<8} "
                   f"{_safe(row['sender'])[:60]:<30} {_safe(row['reason'] or '')[:160]}")
    if rows:
        click.echo("Release one with `vraagbaak tickets release KEY` after checking it is genuine.")


@tickets_group.command("release")
@click.argument("key")
@click.pass_obj
def release_command(app, key: str) -> None:
    """Process a quarantined or rejected mail again, vouched for by you: a reply without signed references is then
    accepted from a pool member without an authentication verdict (check the sender first)."""
    try:
        result = app.tickets.release(key)
    except EscalationError as exc:
        raise click.ClickException(str(exc)) from None
    _deliver(app)
    ticket = f"VB-{result.ticket}" if result.ticket else "no ticket"
    click.echo(f"{result.status}: {ticket}" + (f" ({_safe(result.reason)})" if result.reason else ""))
    if result.status != "accepted":
        raise click.exceptions.Exit(1)


@tickets_group.command("poll")
@click.pass_obj
def poll_command(app) -> None:
    """Read the expert mailbox once (IMAP), deliver answers, send reminders for overdue tickets."""
    mailbox = app.mailbox()
    if mailbox is None:
        raise click.ClickException("no expert mailbox configured (VRAAGBAAK_IMAP_HOST)")
    try:
        results = app.tickets.poll(mailbox)
    except EscalationError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        mailbox.close()
    delivered = _deliver(app)
    reminders = app.tickets.remind_overdue()
    counts = {s: sum(1 for r in results if r.status == s)
              for s in ("accepted", "duplicate", "rejected", "quarantined")}
    click.echo(f"{counts['accepted']} accepted, {counts['duplicate']} duplicate, {counts['rejected']} rejected, "
               f"{counts['quarantined']} quarantined; {delivered} delivered; {reminders} reminders.")


@tickets_group.command("publish")
@click.argument("number", type=int)
@click.option("--as-case", is_flag=True, help="Publish as a practice case instead of a FAQ entry.")
@click.option("--bestuur", help="Case: the local government, as it may be named (\"Gemeente Kortrijk\").")
@click.option("--type", "type_bestuur", type=click.Choice(CASE_TYPES), default="gemeente", show_default=True,
              help="Case: the kind of local government.")
@click.option("--procedure", type=click.Choice(CASE_PROCEDURES), help="Case: the procedure it is about.")
@click.option("--lessons", help="Case: the lessons learned, in Dutch.")
@click.option("--year", type=click.IntRange(1990, 2100), help="Case: the year (default: the year of the answer).")
@click.option("--estimate", type=click.IntRange(0, None), help="Case: the estimate in euro excl. VAT.")
@click.pass_obj
def publish_command(app, number: int, as_case: bool, bestuur: str | None, type_bestuur: str,
                    procedure: str | None, lessons: str | None, year: int | None, estimate: int | None) -> None:
    """Turn an answered ticket into a FAQ record, or with --as-case into a practice case (after the expert and the
    officer agreed); the next refresh indexes it.

    \b
    Example: vraagbaak tickets publish 12 --as-case --bestuur "Gemeente Kortrijk" --procedure pcp \\
             --lessons "Begin met een marktconsultatie."
    """
    try:
        if as_case:
            missing = [name for name, value in (("--bestuur", bestuur), ("--procedure", procedure),
                                                ("--lessons", lessons)) if not value]
            if missing:
                raise click.UsageError(f"--as-case needs {', '.join(missing)}")
            record = app.tickets.publish_case(number, cases_path(app.settings.home), bestuur=bestuur,
                                              procedure=procedure, lessons=lessons, type_bestuur=type_bestuur,
                                              year=year, estimate_eur=estimate)
            click.echo(f"Published as \"Praktijkvoorbeeld: {record['bestuur']}, {record['year']}\". Run "
                       "`vraagbaak corpus refresh` to make it citable.")
            return
        record = app.tickets.publish(number, faq_path(app.settings.home))
    except EscalationError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Published as \"{record['title']}\". Run `vraagbaak corpus refresh` to make it citable.")


@tickets_group.command("close")
@click.argument("number", type=int)
@click.pass_obj
def close_command(app, number: int) -> None:
    """Close a ticket."""
    try:
        click.echo(f"{app.tickets.close(number).tag} closed.")
    except EscalationError as exc:
        raise click.ClickException(str(exc)) from None


@tickets_group.command("reopen")
@click.argument("number", type=int)
@click.pass_obj
def reopen_command(app, number: int) -> None:
    """Reopen a ticket (it waits for an expert again)."""
    try:
        click.echo(f"{app.tickets.reopen(number).tag} reopened.")
    except EscalationError as exc:
        raise click.ClickException(str(exc)) from None


@click.group("experts")
def experts_group() -> None:
    """The expert pool."""


@experts_group.command("list")
@click.pass_obj
def experts_list_command(app) -> None:
    """Experts, their topics, the fallback address and the SLA."""
    try:
        pool = app.pool
    except EscalationError as exc:
        raise click.ClickException(str(exc)) from None
    if pool is None:
        raise click.ClickException("no expert pool configured: set VRAAGBAAK_EXPERTS_FILE "
                                   "(example: escalation/data/experts.example.yaml)")
    for expert in pool.experts:
        click.echo(f"{expert.name:<24} {expert.email:<32} {', '.join(expert.topics)}")
    click.echo(f"fallback: {pool.fallback}; SLA: {pool.sla_hours:g} h"
               + (f"; working hours: {pool.working_hours}" if pool.working_hours else ""))
