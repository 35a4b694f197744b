#!/usr/bin/env bash
# Runs every benchmark of docs/PERFORMANCE.md. Needs ../shared and an index of LegalQA-NL:
#   VRAAGBAAK_HOME=$LQA vraagbaak corpus refresh --manifest bench/manifests/legalqa.yaml
# Usage: LQA=/path/to/legalqa-home bash bench/run_all.sh > bench-results.jsonl
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
dev=../shared/data/legalqa-nl/questions-dev.jsonl
inq=bench/questions/aanbestedingswet.jsonl
$py bench/bench_retrieval.py throughput --manifest bench/manifests/aanbestedingswet.yaml
VRAAGBAAK_HOME=$LQA $py bench/bench_retrieval.py refresh --manifest bench/manifests/legalqa.yaml --repeat 5
VRAAGBAAK_HOME=$LQA $py bench/bench_retrieval.py query --questions $dev $inq --repeat 3
VRAAGBAAK_HOME=$LQA $py bench/bench_retrieval.py query --questions $dev $inq --repeat 3 --mode bm25
VRAAGBAAK_HOME=$LQA $py bench/bench_retrieval.py reply --questions $dev $inq --repeat 3
