"""`vraagbaak corpus ...`: refresh the index from the manifest, and show its status."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from common.errors import ConfigError
from corpus.errors import CorpusError
from corpus.manifest import bundled_manifest_path, load_manifest
from retrieval.errors import RetrievalError

if TYPE_CHECKING:
    from corpus.refresh import RefreshSummary

MANIFEST_HELP = "Sources manifest (default: the bundled one; env VRAAGBAAK_MANIFEST)."


@click.group("corpus")
def corpus_group() -> None:
    """Manage the indexed corpus of legislation, guidance and cases."""


@corpus_group.command("refresh")
@click.option("--manifest", type=click.Path(dir_okay=False, path_type=Path), envvar="VRAAGBAAK_MANIFEST",
              help=MANIFEST_HELP)
@click.option("--source", "sources", multiple=True, metavar="ID", help="Refresh only this source (repeatable).")
@click.option("--dry-run", is_flag=True, help="Read and chunk, report what would change, write nothing.")
@click.option("--rebuild", is_flag=True, help="Re-read every source and rebuild the index (after a model change).")
@click.option("--online", is_flag=True, envvar="VRAAGBAAK_ONLINE",
              help="Also fetch sources marked online (official websites); needs network access.")
@click.pass_obj
def refresh_command(app, manifest: Path | None, sources: tuple[str, ...], dry_run: bool, rebuild: bool,
                    online: bool) -> None:
    """Refresh the index: only new or changed chunks are embedded; the switch is atomic.

    \b
    Examples:
      vraagbaak corpus refresh
      vraagbaak corpus refresh --source sample-guidance --dry-run
      vraagbaak corpus refresh --manifest my-sources.yaml --rebuild
    """
    try:
        spec = load_manifest(manifest, home=app.settings.home)
        bar = _ProgressBar()
        summary = app.refresher().refresh(spec, only=list(sources) or None, dry_run=dry_run,
                                          rebuild=rebuild, online=online, progress=bar)
        bar.close()
    except (CorpusError, RetrievalError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from None
    _print_summary(summary)
    if summary.failed:
        raise click.exceptions.Exit(1)


class _ProgressBar:
    """A click progress bar shown only when there is embedding work to do."""

    def __init__(self) -> None:
        self._bar = None
        self._done = 0

    def __call__(self, done: int, total: int) -> None:
        if total == 0:
            return
        if self._bar is None:
            self._bar = click.progressbar(length=total, label="Embedding", file=click.get_text_stream("stderr"))
            self._bar.__enter__()
        self._bar.update(done - self._done)
        self._done = done

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)


def _print_summary(summary: RefreshSummary) -> None:
    for report in summary.sources:
        line = f"  {report.source_id:<28} {report.status:<9} {report.chunks:>6} chunks"
        if report.error:
            line += f"  ({report.error})"
        click.echo(line)
        for warning in report.warnings[:5]:
            click.echo(f"      warning: {warning}")
        if len(report.warnings) > 5:
            click.echo(f"      ... and {len(report.warnings) - 5} more warnings")
    ok = sum(1 for r in summary.sources if r.status in ("ok", "unchanged"))
    verb = "would change" if summary.dry_run else "changed"
    click.echo(
        f"Sources: {ok} ok, {len(summary.failed)} failed, "
        f"{sum(1 for r in summary.sources if r.status == 'skipped')} skipped. "
        f"Chunks {verb}: {summary.added} added, {summary.changed} changed, {summary.removed} removed, "
        f"{summary.unchanged} unchanged; {summary.embedded} embedded. {summary.seconds:.1f} s."
    )
    if summary.switched:
        click.echo(f"Index generation {summary.generation} is now active.")


@corpus_group.command("status")
@click.option("--manifest", type=click.Path(dir_okay=False, path_type=Path), envvar="VRAAGBAAK_MANIFEST",
              help=MANIFEST_HELP)
@click.pass_obj
def status_command(app, manifest: Path | None) -> None:
    """List each source with its last refresh, chunk count and last error, and the documents whose validity
    ("geldig tot") has ended or ends within 60 days."""
    try:
        spec = load_manifest(manifest, home=app.settings.home)
    except CorpusError as exc:
        raise click.ClickException(str(exc)) from None
    home: Path = app.settings.home
    click.echo(f"Manifest: {spec.path}" + ("  (bundled)" if spec.path == bundled_manifest_path().resolve() else ""))
    generation = app.store.active()
    if generation:
        meta = app.store.read_meta(generation)
        click.echo(f"Index: generation {generation}, {meta.chunks} chunks, model {meta.model}")
    else:
        click.echo("Index: none yet (run `vraagbaak corpus refresh`)")
    from corpus.refresh import SourceState

    state = SourceState(home / "state.sqlite") if os.path.isdir(home) else None
    try:
        for source in spec.sources:
            row = state.get(source.id) if state else {}
            when = _when(row.get("last_refresh"))
            error = row.get("last_error") or ""
            flag = " [online]" if source.online else ""
            click.echo(f"  {source.id:<28} {source.kind:<12} {when:<17} {row.get('chunks') or 0:>6} chunks"
                       f"{flag}{'  error: ' + error if error else ''}")
    finally:
        if state:
            state.close()
    if generation:
        _print_validity(app.store.read_chunks(generation), today=dt.date.today())


EXPIRY_WARNING_DAYS = 60


def expiring(chunks, *, today: dt.date, within_days: int = EXPIRY_WARNING_DAYS) -> list[tuple[str, str, str, str]]:
    """(state, valid until, source, document title) per indexed document that expired or expires within
    ``within_days``, soonest first; state is "expired" or "expires"."""
    limit = (today + dt.timedelta(days=within_days)).isoformat()
    seen: dict[tuple[str, str], tuple[str, str, str, str]] = {}
    for chunk in chunks:
        until = chunk.get("valid_until")
        if until and until <= limit and (chunk.source_id, chunk.doc_id) not in seen:
            state = "expired" if until < today.isoformat() else "expires"
            seen[(chunk.source_id, chunk.doc_id)] = (state, until, chunk.source_id, chunk.title)
    return sorted(seen.values(), key=lambda row: row[1])


def _print_validity(chunks, *, today: dt.date) -> None:
    rows = expiring(chunks, today=today)
    if not rows:
        click.echo(f"Validity: nothing expired or expiring within {EXPIRY_WARNING_DAYS} days.")
        return
    click.echo(f"Validity: {len(rows)} document(s) expired or expiring within {EXPIRY_WARNING_DAYS} days "
               "(update them, or answers quoting them carry a warning):")
    for state, until, source, title in rows:
        click.echo(f"  {state:<8} {until}  {source}: {title}")


def _when(timestamp: float | None) -> str:
    if not timestamp:
        return "never"
    return dt.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")
