#!/usr/bin/env bash
# The main job on the embedded default (the shared data): installs what is missing, builds, and runs it.
# Today it evaluates the shared first-stage runs and DisRanker's own Xapian BM25 and prints the metrics tables;
# later stages (teacher, distillation, student) extend it into the full DisRanker pipeline.
set -euo pipefail
cd "$(dirname "$0")"
export DISRANKER_DATA="${DISRANKER_DATA:-$(pwd)/../shared/data}"
scripts/install-deps.sh
scripts/build.sh build
exec scripts/baselines.sh build/disranker runs/quickstart
