#!/usr/bin/env bash
# The main job on the embedded default (the shared data): installs what is missing, builds, and runs the whole
# DisRanker pipeline (docs/pipeline.md): teacher CPT and rank SFT, teacher scores, student MLM, labels-only and
# distilled students, evaluation on the dev sets, runs/quickstart/report.md and a deployable student in
# runs/quickstart/student. About 20 minutes on a 2-core CPU; a rerun skips the finished steps.
#   ./quickstart.sh [extra pipeline flags, e.g. --device cuda or --threads 4]
set -euo pipefail
cd "$(dirname "$0")"
export DISRANKER_DATA="${DISRANKER_DATA:-$(pwd)/../shared/data}"
scripts/install-deps.sh
scripts/build.sh build
exec build/disranker pipeline --config configs/quickstart.toml --out runs/quickstart "$@"
