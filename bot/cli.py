"""The `vraagbaak` command: corpus maintenance, evaluation and the console channel."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from bot.app import App
from corpus.cli import corpus_group
from retrieval.errors import ConfigError, RetrievalError
from retrieval.evaluation import EvalFileError, evaluate, read_questions
from retrieval.search import MODES
from retrieval.settings import RetrievalSettings


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log progress to stderr.")
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    """Vraagbaak: a helpdesk on innovative public procurement for Flemish local governments.

    Settings come from VRAAGBAAK_* environment variables (see .env.example).
    """
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        ctx.obj = App(RetrievalSettings.from_env())
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


main.add_command(corpus_group)


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
    try:
        items = read_questions(questions)
        retriever = app.retriever
        retriever.search(items[0].question, k=k, mode=mode)  # warm-up: first query loads the model
        result = evaluate(items, lambda q: retriever.search(q, k=max(k, 10), mode=mode), k=k)
    except (EvalFileError, RetrievalError) as exc:
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
    missed = [row["id"] for row in result["per_question"] if row["rank"] is None]
    if missed:
        click.echo(f"  not found in top {k}: {', '.join(missed)}")


@main.command("ask")
@click.argument("question")
@click.option("--k", default=3, show_default=True, type=click.IntRange(1, 20))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_obj
def ask_command(app: App, question: str, k: int, as_json: bool) -> None:
    """Ask one question; prints the best passages with their sources.

    \b
    Example:
      vraagbaak ask "Wanneer mag ik een innovatiepartnerschap gebruiken?"
    """
    try:
        hits = app.retriever.search(question, k=k)
    except RetrievalError as exc:
        raise click.ClickException(str(exc)) from None
    citations = [
        {"n": n, "title": h.chunk.title, "label": h.chunk.label, "url": h.chunk.url, "kind": h.chunk.kind,
         "effective_date": h.chunk.effective_date}
        for n, h in enumerate(hits, 1)
    ]
    if as_json:
        click.echo(json.dumps({"question": question, "passages": [h.chunk.text for h in hits],
                               "citations": citations}, ensure_ascii=False))
        return
    if not hits:
        click.echo("Ik vond geen passende bron voor die vraag.")
        return
    click.echo("Dit zijn de meest relevante passages:\n")
    for cite, hit in zip(citations, hits):
        excerpt = hit.chunk.text if len(hit.chunk.text) < 600 else hit.chunk.text[:600].rsplit(" ", 1)[0] + " …"
        click.echo(f"[{cite['n']}] {excerpt}\n")
    click.echo("Bronnen:")
    for cite in citations:
        parts = [cite["title"], cite["label"], f"geldig op {cite['effective_date']}" if cite["effective_date"] else None,
                 cite["url"]]
        click.echo(f"  [{cite['n']}] " + " — ".join(p for p in parts if p))
