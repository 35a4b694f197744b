"""The `vraagbaak` command end to end (CliRunner, chromadb on disk, fake embedder)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import main


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

    text = runner.invoke(main, ["ask", "dialoogrondes met elke kandidaat"])
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
