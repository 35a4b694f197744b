"""`vraagbaak routing`: train the routing model of an embedding model, and report its numbers."""

from __future__ import annotations

import json
from pathlib import Path

import click

from common.errors import ConfigError
from corpus.errors import CorpusError
from retrieval.errors import RetrievalError

ROUTING_DIR = Path(__file__).resolve().parent / "data" / "routing"
DEFAULT_MODEL = "default"
"""The model-independent routing file's name (``bot.routing.DEFAULT_MODEL``; not imported: the routing code loads
scikit-learn's friends, and `vraagbaak --help` must start fast)."""


@click.group("routing")
def routing_group() -> None:
    """The learned routing: intent (what the officer wants) and evidence (does a source answer it)."""


@routing_group.command("train")
@click.option("--independent", is_flag=True,
              help=f"Train the model-independent {DEFAULT_MODEL!r} file (no embedding features).")
@click.option("--work", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the training indexes are kept between runs [default: VRAAGBAAK_HOME/routing-work].")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Model file to write [default: bot/data/routing/<embedder>.json].")
@click.pass_obj
def routing_train_command(app, independent: bool, work: Path | None, output: Path | None) -> None:
    """Train on the train splits of bench/questions and write the model file.

    \b
    Examples (the second needs no model download and is what the tests use):
      vraagbaak routing train
      VRAAGBAAK_EMBEDDER=fake vraagbaak routing train --independent
    """
    from bot.routing_train import train

    try:
        data = train(app.embedder, work=work or app.settings.home / "routing-work", independent=independent,
                     say=lambda line: click.echo(line, err=True))
    except (CorpusError, RetrievalError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from None
    from bot.routing import load_routing, model_file_name

    name = DEFAULT_MODEL if independent else app.embedder.name
    path = output or ROUTING_DIR / model_file_name(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    path.chmod(0o644)  # part of the package, read by the service's user: not private like the data home
    load_routing.cache_clear()
    click.echo(f"wrote {path}")


@routing_group.command("report")
@click.option("--model", "model_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Model file to report on [default: the one the embedder uses].")
@click.option("--work", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the evaluation indexes are kept [default: VRAAGBAAK_HOME/routing-work].")
@click.option("--legalqa", is_flag=True, help="Also LegalQA-NL dev (indexes 4,653 articles the first time).")
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON (with per-question rows).")
@click.pass_obj
def routing_report_command(app, model_path: Path | None, work: Path | None, legalqa: bool, as_json: bool) -> None:
    """Intent confusion matrices and decision rates on every question set, train and dev apart."""
    from bot.routing import RoutingModel, load_routing
    from bot.routing_train import report

    model = (RoutingModel.from_dict(json.loads(model_path.read_text(encoding="utf-8"))) if model_path
             else load_routing(app.embedder.name))
    try:
        result = report(model, app.embedder, work=work or app.settings.home / "routing-work", legalqa=legalqa)
    except (CorpusError, RetrievalError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False, indent=1))
        return
    click.echo(f"routing model {model.embedder} with embedder {app.embedder.name}")
    for name, part in result.items():
        if not isinstance(part, dict):
            continue
        click.echo(f"\n{name} ({part['questions']} questions)")
        if "model" in part:
            for view in ("model", "routed"):
                v = part[view]
                click.echo(f"  {view}: own-case/person recall {v['escalation_recall']}, "
                           f"information escalated {v['information_escalated']}")
                for expected, row in v["confusion"].items():
                    click.echo(f"    {expected:<12} " + ", ".join(f"{k} {n}" for k, n in sorted(row.items())))
        else:
            for expected, row in part["decisions"].items():
                click.echo(f"  {expected:<12} " + ", ".join(f"{k} {n}" for k, n in sorted(row.items())))
            if part["with_gold"]:
                click.echo(f"  answered {part['answered_with_gold']}/{part['with_gold']} "
                           f"({part['answered_share']}), gold cited among answered "
                           f"{part['gold_cited_among_answered']}, quoted first {part['gold_first_among_answered']}")
