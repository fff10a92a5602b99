#!/usr/bin/env bash
# The DisRanker recipe end to end on WikiQA, with models trained from scratch (no pretrained weights exist here):
#   BPE tokenizer → teacher init → CPT on (question → clicked page title + summary) → rank SFT on wikiqa-train →
#   teacher scores → BERT student: MLM pre-training → (a) trained on labels alone, (b) distilled from the teacher
#   → every model scored on wikiqa-dev and compared (BM25 rerank as the first-stage reference).
# Usage: scripts/wikiqa_experiment.sh [BUILD_DIR] [OUT_DIR]   (DISRANKER_DATA: the shared data)
# Settings are in configs/wikiqa-experiment.toml (one [section] per command).
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
out="${2:-runs/wikiqa}"
bin="$build/disranker"
data="${DISRANKER_DATA:-../shared/data}"
cfg="configs/wikiqa-experiment.toml"
train="$data/wikiqa-train"
dev="$data/wikiqa-dev"
for f in "$train/queries.tsv" "$train/docs.tsv" "$train/qrels.txt" "$dev/queries.tsv" "$dev/docs.tsv" "$dev/qrels.txt"; do
  [ -f "$f" ] || { echo "error: $f is missing (set DISRANKER_DATA to the shared data directory)" >&2; exit 1; }
done
mkdir -p "$out"
step() { echo; echo "=== $* ($(date +%H:%M:%S))"; }
# A stage is skipped when its model exists, so the script can be rerun after an interruption; a stage that was
# killed resumes from its checkpoint.
done_stage() { [ -f "$1/model/config.json" ]; }

step "BM25 reranking of the dev candidates (the first-stage reference)"
[ -d "$out/index-dev" ] || "$bin" index --docs "$dev/docs.tsv" --out "$out/index-dev"
"$bin" retrieve --index "$out/index-dev" --queries "$dev/queries.tsv" --candidates-qrels "$dev/qrels.txt" \
  --out "$out/dev.bm25.txt"

step "Teacher tokenizer: byte-level BPE on the training text"
[ -f "$out/bpe/tokenizer.json" ] || { mkdir -p "$out/bpe"; "$bin" train-tokenizer --kind bpe --vocab-size 8000 \
  --docs "$train/docs.tsv" --queries "$train/queries.tsv" --out "$out/bpe/tokenizer.json"; }

step "CPT pairs: question → clicked Wikipedia page (title + summary sentences)"
"$bin" clicks cpt-pairs --from-qrels --queries "$train/queries.tsv" --docs "$train/docs.tsv" \
  --qrels "$train/qrels.txt" --target page --out "$out/cpt-pairs.tsv"

step "Teacher: init (decoder-mini) → CPT → rank SFT"
[ -f "$out/teacher-init/config.json" ] || "$bin" init --config configs/models/decoder-mini.json \
  --tokenizer "$out/bpe/tokenizer.json" --role teacher --max-length 128 --out "$out/teacher-init"
done_stage "$out/cpt" || "$bin" --config "$cfg" cpt --model "$out/teacher-init" --pairs "$out/cpt-pairs.tsv" \
  --text "$train/docs.tsv" --out "$out/cpt" --resume
done_stage "$out/sft" || "$bin" --config "$cfg" sft --model "$out/cpt/model" --queries "$train/queries.tsv" \
  --docs "$train/docs.tsv" --qrels "$train/qrels.txt" --dev "$dev" --dev-require-relevant --out "$out/sft" --resume

step "Teacher scores: the training pool (for distillation) and the dev candidates (for evaluation)"
"$bin" score --model "$out/sft/model" --queries "$train/queries.tsv" --docs "$train/docs.tsv" \
  --qrels "$train/qrels.txt" --out "$out/train.teacher.txt"
"$bin" score --model "$out/sft/model" --queries "$dev/queries.tsv" --docs "$dev/docs.tsv" \
  --qrels "$dev/qrels.txt" --out "$out/dev.teacher.txt"

step "Student: init (bert-mini, BERT uncased WordPiece vocabulary) → MLM pre-training"
[ -f "$out/student-init/config.json" ] || "$bin" init --config configs/models/bert-mini.json \
  --tokenizer "$data/weights/vocab/bert-base-uncased-vocab.txt" --role student --mlm-head --max-length 128 \
  --out "$out/student-init"
done_stage "$out/mlm" || "$bin" --config "$cfg" mlm --model "$out/student-init" --text "$train/docs.tsv" \
  --out "$out/mlm" --resume

step "Student (a): labels alone (the baseline)"
done_stage "$out/student-labels" || "$bin" --config "$cfg" sft --model "$out/mlm/model" \
  --queries "$train/queries.tsv" --docs "$train/docs.tsv" --qrels "$train/qrels.txt" --dev "$dev" \
  --dev-require-relevant --out "$out/student-labels" --resume
step "Student (b): distilled from the teacher's scores (hybrid loss)"
done_stage "$out/student-distill" || "$bin" --config "$cfg" distill --model "$out/mlm/model" \
  --teacher-run "$out/train.teacher.txt" --queries "$train/queries.tsv" --docs "$train/docs.tsv" \
  --qrels "$train/qrels.txt" --dev "$dev" --dev-require-relevant --out "$out/student-distill" --resume

step "Dev scores of the students"
for s in student-labels student-distill; do
  "$bin" score --model "$out/$s/model" --queries "$dev/queries.tsv" --docs "$dev/docs.tsv" --qrels "$dev/qrels.txt" \
    --out "$out/dev.$s.txt"
done

step "wikiqa-dev, questions with a positive (126): metrics and paired randomization tests"
metrics=(-m recip_rank -m map -m ndcg_cut.10 -m pnr)
"$bin" eval --qrels "$dev/qrels.txt" --require-relevant "${metrics[@]}" --run "$out/dev.bm25.txt" \
  --run "$out/dev.teacher.txt" --run "$out/dev.student-labels.txt" --run "$out/dev.student-distill.txt" \
  | tee "$out/dev-metrics.txt"
"$bin" compare --qrels "$dev/qrels.txt" --require-relevant -m recip_rank -m ndcg_cut.10 \
  --run "$out/dev.bm25.txt" --run "$out/dev.teacher.txt" | tee "$out/compare-teacher-vs-bm25.txt"
"$bin" compare --qrels "$dev/qrels.txt" --require-relevant -m recip_rank -m ndcg_cut.10 \
  --run "$out/dev.student-labels.txt" --run "$out/dev.student-distill.txt" | tee "$out/compare-distill-vs-labels.txt"
