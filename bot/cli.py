"""The `vraagbaak` command: corpus maintenance, evaluation and the console channel."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from pathlib import Path

import click

from bot.app import App
from bot.messages import Incoming, Reply
from bot.routing_cli import routing_group
from corpus.cli import corpus_group
from escalation.cli import experts_group, tickets_group
from escalation.errors import EscalationError
from common.errors import ConfigError
from retrieval.errors import RetrievalError
from retrieval.types import MODES

logger = logging.getLogger(__name__)


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log progress to stderr.")
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    """Vraagbaak: a helpdesk on innovative public procurement for Flemish local governments.

    Settings come from VRAAGBAAK_* environment variables (see .env.example).
    """
    # Everything Vraagbaak writes (logs of questions, tickets, archived mail, keys) is for its own user only.
    os.umask(0o077)
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # bm25s logs every index build at DEBUG on its own handler; httpx logs request URLs.
    for noisy in ("bm25s", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        # The one place that reads the environment: every setting comes from this snapshot.
        ctx.obj = App.from_env(os.environ)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    home = ctx.obj.settings.home
    if home.is_dir():
        # Files written by versions before the umask keep their mode; a private home folder covers them too.
        home.chmod(0o700)


main.add_command(corpus_group)
main.add_command(tickets_group)
main.add_command(experts_group)
main.add_command(routing_group)


@main.command("eval")
@click.option("--questions", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JSONL file: {\"id\", \"question\", \"gold\": [...], \"expect\"?} per line.")
@click.option("--k", default=10, show_default=True, type=click.IntRange(1, 100), help="Results per question.")
@click.option("--mode", type=click.Choice(MODES), default="hybrid", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_obj
def eval_command(app: App, questions: Path, k: int, mode: str, as_json: bool) -> None:
    """Measure retrieval on a question set: Recall@1/5/10, MRR@10, nDCG@10, latency.

    \b
    Example:
      vraagbaak eval --questions bench/questions/aanbestedingswet.jsonl --mode bm25
    """
    from retrieval.evaluation import EvalFileError, evaluate, read_questions

    try:
        items = read_questions(questions)
        retriever = app.retriever
        retriever.search(items[0].question, k=k, mode=mode)  # warm-up: first query loads the model
        respond = _responder(app) if any(q.expect or q.answer for q in items) else None
        result = evaluate(items, lambda q: retriever.search(q, k=max(k, 10), mode=mode), k=k,
                          decide=(lambda q: str(respond(q).decision)) if respond else None,
                          respond=(lambda q: _answer_text(respond(q))) if respond else None)
    except (EvalFileError, RetrievalError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False))
        return
    click.echo(f"Questions: {result['n']}  mode: {mode}  index: {retriever.generation}")
    for key in ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10"):
        click.echo(f"  {key:<10} {result[key]:.3f}")
    lat = result["latency_ms"]
    click.echo(f"  latency    p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f} ms")
    decision = result["decision_accuracy"]
    click.echo(f"  decisions  {'n/a' if decision is None else f'{decision:.3f}'}")
    if result["answer_n"]:
        click.echo(f"  answers    token F1 {result['answer_f1']:.3f}, ROUGE-L {result['answer_rouge_l']:.3f} "
                   f"against {result['answer_n']} reference answers")
    skipped = result["skipped"]
    if skipped:
        reasons = ", ".join(f"{count} {reason}" for reason, count in skipped.items())
        click.echo(f"  skipped    {sum(skipped.values())} questions without retrieval gold ({reasons}); "
                   f"retrieval metrics over {result['retrieval_n']}")
    if result["missed"]:
        click.echo(f"  not found in top {k}: {', '.join(result['missed'])}")


@main.command("claims")
@click.option("--claims", "path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Labelled sentences [default: bench/claims/claims.jsonl].")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def claims_command(path: Path | None, as_json: bool) -> None:
    """Calibrate the generative mode's support check on train and measure it on dev.

    \b
    Each labelled sentence is checked as if a model had written it with the marker [1] of its passage. Prints the
    threshold calibration picks, and for it and the bundled one: accuracy, unsupported sentences kept, supported
    sentences dropped, per kind of sentence.
    """
    from retrieval.claims_eval import CLAIMS_PATH, report

    try:
        result = report(path or CLAIMS_PATH)
    except (OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False))
        return
    click.echo(f"Calibrated on train: {result['calibrated_threshold']}  bundled: {result['threshold']}")
    for split in ("train", "dev"):
        for threshold, scores in result[split].items():
            kinds = ", ".join(f"{kind} {right}" for kind, right in scores["by_kind"].items())
            click.echo(f"  {split:<5} at {threshold}: {scores['n']} sentences, accuracy {scores['accuracy']:.3f}, "
                       f"unsupported kept {scores['kept_unsupported']}, supported dropped "
                       f"{scores['dropped_supported']}\n    {kinds}")


def _responder(app: App):
    """The helpdesk's reply to a question, each in a fresh conversation, logged nowhere permanent (one reply per
    question: the decision and the answer metrics read the same one)."""
    from bot.audit import AuditLog
    from bot.core import HelpdeskService

    helpdesk = HelpdeskService.create(retriever=app.retriever, audit=AuditLog("sqlite://", key=b"eval"),
                                      model=app.embedder.name, embed=app.query_embedder.embed_query)
    replies: dict[str, Reply] = {}

    def respond(question: str) -> Reply:
        if question not in replies:
            replies[question] = helpdesk.handle(Incoming(channel="eval", conversation_id=f"eval:{len(replies)}",
                                                         user_id="eval", text=question))
        return replies[question]

    return respond


def _answer_text(reply: Reply) -> str:
    """What the officer reads as the answer: the reply without its [n] markers and closing next step."""
    from bot.texts import NEXT_STEP_ANSWER

    return re.sub(r"\s*\[\d+\]", "", reply.text.replace(NEXT_STEP_ANSWER, "")).strip()


@main.command("ask")
@click.argument("question")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (decision, text, citations, ticket, actions).")
@click.pass_obj
def ask_command(app: App, question: str, as_json: bool) -> None:
    """Ask one question and print the helpdesk's reply with its sources.

    \b
    Example:
      vraagbaak ask "Wanneer mag ik een innovatiepartnerschap gebruiken?"
    """
    from bot.channels.console import console_incoming, render

    try:
        reply = app.helpdesk.handle(console_incoming(question))
    except (RetrievalError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(reply.as_dict(), ensure_ascii=False) if as_json else render(reply))


@main.command("chat")
@click.pass_obj
def chat_command(app: App) -> None:
    """Chat with the helpdesk in the terminal (the console channel)."""
    from bot.channels.console import ConsoleChat

    try:
        helpdesk = app.helpdesk
        app.retriever.search("opwarmen", k=1)  # load the model before the first question, not during it
        app.retriever.term_stats()
    except (RetrievalError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from None
    ConsoleChat(helpdesk, pending=app.escalator.pending_answers).run()


@main.command("stats")
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 3650), help="Period to report on.")
@click.pass_obj
def stats_command(app: App, days: int) -> None:
    """Questions per day, decision mix, escalation rate, feedback, and the knowledge gaps to fill."""
    stats = app.audit.stats(days=days)
    click.echo(f"Last {days} days. Questions: {stats.total}")
    for day, count in stats.per_day:
        click.echo(f"  {day}  {count}")
    mix = ", ".join(f"{decision} {count}" for decision, count in stats.decisions.items())
    click.echo(f"Decisions: {mix}")
    click.echo(f"Escalated to experts: {stats.escalation_rate:.0%}")
    votes = stats.feedback_up + stats.feedback_down
    ratio = f" ({stats.feedback_up / votes:.0%} positive)" if votes else ""
    click.echo(f"Feedback: 👍 {stats.feedback_up} / 👎 {stats.feedback_down}{ratio}")
    if stats.gaps:
        click.echo("Knowledge gaps (not found, escalated for lack of an answer, or disliked):")
        for question, count in stats.gaps:
            click.echo(f"  {count}x  {question}")
    _print_topics(app, days)


def _print_topics(app: App, days: int, per_topic: int = 3) -> None:
    """The most asked questions per topic, and the questions experts answered (to publish as FAQ or case)."""
    from escalation.pool import classify_topic

    by_topic: dict[str, list[tuple[str, int]]] = {}
    for question, count in app.audit.top_questions(days=days):
        by_topic.setdefault(classify_topic(question), []).append((question, count))
    if by_topic:
        click.echo("Most asked per topic:")
        for topic, rows in sorted(by_topic.items(), key=lambda item: -sum(n for _, n in item[1])):
            click.echo(f"  {topic} ({sum(n for _, n in rows)} questions)")
            for question, count in rows[:per_topic]:
                click.echo(f"    {count}x  {_short(question)}")
    since = time.time() - days * 86400
    answered = [t for t in app.tickets.store.list(limit=1000) if (t.answered_at or 0) >= since]
    click.echo(f"Answered by experts: {len(answered)}" + (" (publish a general one with `vraagbaak tickets publish "
                                                         "N`, or `--as-case` for a practice case)" if answered else ""))
    for t in answered:
        shared = ", published" if t.published_at else ""
        click.echo(f"  {t.tag} [{t.topic}{shared}]  {_short(t.question)}")


def _short(text: str, limit: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"


@main.group("feedback")
def feedback_group() -> None:
    """Feedback on answers."""


@feedback_group.command("export")
@click.option("-o", "--output", type=click.File("w", encoding="utf-8"), default="-", help="JSONL file (default: stdout).")
@click.pass_obj
def feedback_export_command(app: App, output) -> None:
    """Disliked answers as JSONL in the eval format, one line per question, to turn into test questions (fill in
    "gold")."""
    lines = app.audit.export_disliked()
    for line in lines:
        output.write(json.dumps(line, ensure_ascii=False) + "\n")
    where = "stdout" if output.name == "<stdout>" else output.name
    click.echo(f"{len(lines)} disliked question{'' if len(lines) == 1 else 's'} written to {where}.", err=True)


@main.group("log")
def log_group() -> None:
    """The question and reply log."""


WALK_DAYS = 7
"""A `/procedure` walk untouched this long is abandoned: where it stood is forgotten."""


def purge_all(app: App, keep: int) -> str:
    """Apply one retention period to the log and to the expert pool's data; a line saying what went."""
    from bot.conversation import TTL_SECONDS

    removed = app.audit.purge(older_than_days=keep)
    tickets = app.tickets.purge(older_than_days=keep)
    app.shared_state.purge(turns_older_than=TTL_SECONDS, walks_older_than_days=min(keep, WALK_DAYS))
    return (f"Removed {removed} logged exchange{'' if removed == 1 else 's'} (and their feedback), "
            f"{tickets['tickets']} ticket(s) erased with their mails, {tickets['inbound_mails']} inbound mail "
            f"record(s) and {tickets['archived_files']} archived mail file(s) older than {keep} days.")


@main.group("privacy")
def privacy_group() -> None:
    """What is kept about officers, and deleting it (docs/OPERATIONS.md, "Data protection")."""


@privacy_group.command("purge")
@click.option("--older-than", "days", type=click.IntRange(1, None), default=None,
              help="Days to keep (default: VRAAGBAAK_RETENTION_DAYS, 365).")
@click.pass_obj
def privacy_purge_command(app: App, days: int | None) -> None:
    """Delete everything older than the retention period: the log, tickets (erased), their mails, archived mail
    (`vraagbaak serve` does this once a day)."""
    click.echo(purge_all(app, days or app.bot_settings.retention_days))


log_group.add_command(privacy_purge_command, "purge")  # the older name of the same command


@privacy_group.command("forget")
@click.option("--channel", type=click.Choice(["telegram", "teams", "console"]), required=True,
              help="The channel the officer uses.")
@click.argument("user")
@click.pass_obj
def privacy_forget_command(app: App, channel: str, user: str) -> None:
    """Delete all data of one officer: their logged questions and feedback, their tickets with the mails about
    them. USER is their id in the channel (Telegram user id, Teams AAD object id, console user name)."""
    pseudonym = app.audit.pseudonym(channel, user)
    exchanges = app.audit.forget_user(pseudonym)
    tickets = app.tickets.forget_officer(pseudonym)
    if not exchanges and not tickets["tickets"]:
        click.echo(f"Nothing stored for {channel} user {user!r} (check the id: in Teams the AAD object id, or "
                   "from.id for a user without one).", err=True)
    click.echo(f"Removed {exchanges} logged exchange(s), {tickets['tickets']} ticket(s) with their mails, "
               f"{tickets['inbound_mails']} inbound mail(s) and {tickets['archived_files']} archived file(s) of "
               f"{channel} user {pseudonym[:12]}….")


@main.command("serve")
@click.option("--once", is_flag=True, help="Do one pass of the background work and exit (for cron).")
@click.pass_obj
def serve_command(app: App, once: bool) -> None:
    """Run the service: the configured chat channels (Telegram, Teams) on one HTTP server, plus the background work
    (queued mail, the expert mailbox, answers back to chats, SLA reminders).

    \b
    Channels are on when configured: TELEGRAM_BOT_TOKEN for Telegram, MICROSOFT_APP_ID (or VRAAGBAAK_TEAMS_AUTH=off
    for local testing) for Teams. Listens on VRAAGBAAK_HOST:VRAAGBAAK_PORT (default 127.0.0.1:3978).
    """
    import asyncio
    import signal

    from bot.server import run_server
    from bot.worker import EscalationWorker

    try:
        channels = app.channels()
        _ = app.audit  # opened now: an earlier version's audit.sqlite is merged at start, not in an officer's turn
        lease = app.poller_lease()
        worker = EscalationWorker(service=app.tickets, mailbox_factory=app.mailbox,
                                  deliverers=lambda: {c.name: c for c in channels},
                                  interval_seconds=app.escalation_settings.poll_seconds,
                                  purge=lambda: logger.info(purge_all(app, app.bot_settings.retention_days)),
                                  leader=lease.hold)
        settings = app.server_settings
        routes = app.download_routes()
    except (EscalationError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from None
    if once:
        try:
            click.echo(json.dumps(worker.run_once()))
        finally:
            lease.release()
        return

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        names = ", ".join(c.name for c in channels) or "no chat channel (console only)"
        click.echo(f"Vraagbaak listening on {settings.host}:{settings.port}: {names}. Ctrl-C stops.", err=True)
        try:
            await run_server(channels=channels, worker=worker, settings=settings, stop=stop, extra_routes=routes,
                             ready=app.readiness)
        finally:
            await app.tickets.drain(10.0)  # outcomes of sends that outlasted their pass
            await asyncio.to_thread(lease.release)  # another worker polls from its next pass on

    try:
        asyncio.run(run())
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:  # e.g. the port is taken
        raise click.ClickException(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}") from None


@main.group("telegram")
def telegram_group() -> None:
    """Who may use the Telegram bot: invite codes and admitted officers (docs/TELEGRAM.md).

    Officers listed in VRAAGBAAK_TELEGRAM_ALLOWED_USERS are always allowed; others join with an invite.
    """


def _telegram_access(app: App):
    from bot.channels.telegram_access import LEGACY_FILE, TelegramAccess

    app.settings.home.mkdir(parents=True, exist_ok=True)  # the default SQLite file lives there
    return TelegramAccess(app.escalation_settings.database_url, legacy=app.settings.home / LEGACY_FILE)


def _local_time(timestamp: float) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))


@telegram_group.command("invite")
@click.option("--uses", default=1, show_default=True, type=click.IntRange(1, 500),
              help="How many officers can join with this code.")
@click.option("--days", default=7.0, show_default=True, type=click.FloatRange(0, 365, min_open=True),
              help="How long the code stays valid.")
@click.option("--bot", "bot_username", default=None, help="The bot's @username, to print the deep link.")
@click.pass_obj
def telegram_invite_command(app: App, uses: int, days: float, bot_username: str | None) -> None:
    """Create an invite code; the officer opens the link (or sends /start CODE to the bot) to join.

    \b
    Example:
      vraagbaak telegram invite --bot vraagbaak_gemeente_bot --uses 5 --days 14
    """
    access = _telegram_access(app)
    try:
        invite = access.create_invite(uses=uses, days=days)
    finally:
        access.close()
    click.echo(invite.link(bot_username))
    click.echo(f"Code {invite.code}: {uses} use(s), valid until {_local_time(invite.expires_at)}. It is shown only "
               "now.", err=True)


@telegram_group.command("users")
@click.pass_obj
def telegram_users_command(app: App) -> None:
    """List officers admitted through an invite (ids from VRAAGBAAK_TELEGRAM_ALLOWED_USERS are not listed)."""
    access = _telegram_access(app)
    try:
        members = access.members()
    finally:
        access.close()
    for user_id, joined in members:
        click.echo(f"{user_id}\t{_local_time(joined)}")
    if not members:
        click.echo("No officers joined through an invite yet.", err=True)


@telegram_group.command("revoke")
@click.argument("user_id", type=int)
@click.pass_obj
def telegram_revoke_command(app: App, user_id: int) -> None:
    """Take away access given through an invite, for good: only an invite created afterwards lets them back in
    (remove ids from VRAAGBAAK_TELEGRAM_ALLOWED_USERS yourself)."""
    access = _telegram_access(app)
    try:
        removed = access.revoke(user_id)
    finally:
        access.close()
    if not removed:
        raise click.ClickException(f"{user_id} did not join through an invite")
    click.echo(f"{user_id} no longer has access via an invite. No existing invite lets them in again; only one "
               "created from now on does.")


@telegram_group.command("invites")
@click.option("--invalidate", "invite_id", type=int, default=None, metavar="ID",
              help="Make invite ID unusable (officers who already joined with it stay; revoke them separately).")
@click.pass_obj
def telegram_invites_command(app: App, invite_id: int | None) -> None:
    """List invites: id, created, expires, uses left, officers admitted with it, state. Codes are stored only as
    hashes, so they are never shown again.

    \b
    Examples:
      vraagbaak telegram invites
      vraagbaak telegram invites --invalidate 3
    """
    import time

    access = _telegram_access(app)
    try:
        if invite_id is not None:
            if not access.invalidate(invite_id):
                raise click.ClickException(f"no invite with id {invite_id} (see `vraagbaak telegram invites`)")
            click.echo(f"Invite {invite_id} can no longer be used.")
            return
        invites = access.invites()
    finally:
        access.close()
    if not invites:
        click.echo("No invites created yet.", err=True)
        return
    now = time.time()
    click.echo("\t".join(("id", "created", "expires", "uses left", "redeemed", "state")))
    for invite in invites:
        click.echo("\t".join((str(invite.id), _local_time(invite.created_at), _local_time(invite.expires_at),
                              str(invite.uses_left), str(invite.redeemed), invite.state(now))))


@main.group("teams")
def teams_group() -> None:
    """Microsoft Teams: the app package to upload (docs/TEAMS.md)."""


@teams_group.command("manifest")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=Path("vraagbaak-teams.zip"),
              show_default=True, help="Where to write the app package (zip).")
@click.option("--app-id", envvar="MICROSOFT_APP_ID", help="The bot's Entra application (client) id. "
              "Default: MICROSOFT_APP_ID.")
@click.option("--host", help="Public host name of the server (as in https://HOST/api/messages); added to "
              "validDomains and the default website URL.")
@click.option("--website-url", help="https URL about the helpdesk. Default: https://HOST/.")
@click.option("--privacy-url", help="https URL of the privacy statement. Default: the website URL.")
@click.option("--terms-url", help="https URL of the terms of use. Default: the website URL.")
@click.option("--developer", default="Vraagbaak", show_default=True, help="Publisher name shown in Teams.")
@click.option("--version", "app_version", default="1.0.0", show_default=True,
              help="App version; raise it for every new upload.")
def teams_manifest_command(output: Path, app_id: str | None, host: str | None, website_url: str | None,
                           privacy_url: str | None, terms_url: str | None, developer: str, app_version: str) -> None:
    """Write the Teams app package: manifest.json (schema 1.17) with color.png and outline.png.

    \b
    Example:
      vraagbaak teams manifest --host vraagbaak.gemeente.be -o vraagbaak-teams.zip
    Upload the zip in the Teams admin center (Teams apps > Manage apps > Upload new app).
    """
    from bot.channels.teams_manifest import ManifestError, build_manifest, write_package

    if not app_id:
        raise click.ClickException("give --app-id or set MICROSOFT_APP_ID (the Entra application id of the bot)")
    if not website_url and not host:
        raise click.ClickException("give --host (the public host name of the server) or --website-url")
    try:
        manifest = build_manifest(app_id=app_id, website_url=website_url or f"https://{host}/",
                                  privacy_url=privacy_url, terms_url=terms_url, developer=developer,
                                  domains=[host] if host else [], version=app_version)
        write_package(output, manifest)
    except (ManifestError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Teams app package written to {output} (app id {manifest['id']}, version {app_version}).")


if __name__ == "__main__":  # python -m bot.cli, as bench/bench_startup.py runs it
    main()
