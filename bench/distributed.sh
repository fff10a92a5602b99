#!/usr/bin/env bash
# Scaling of data parallelism on this machine: the same work as 1 process with 1 thread, 1 process with 2
# threads, and 2 ranks (c10d Gloo over loopback) with 1 thread each, for teacher rank fine-tuning (sft of the
# quickstart's decoder), student distillation (bert-mini) and teacher scoring of the TREC DL 2019 BM25 top-100
# (4,300 pairs). Every configuration does the same optimiser steps with the same global batch.
# Usage: bench/distributed.sh [BUILD_DIR] [STEPS]   (DISRANKER_DATA: the shared data; run on a quiet machine)
# Prints a Markdown table (throughput, speedup over 1 process × 1 thread, scaling efficiency = speedup / ranks)
# and the figures the 80M-pair estimate of docs/distributed.md starts from (the teacher's FLOPs per pair and
# the FLOP/s it reached).
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
steps="${2:-24}"
bin="$build/disranker"
data="${DISRANKER_DATA:-../shared/data}"
train="$data/wikiqa-train"
dl19="$data/trec-dl19"
vocab="$data/weights/vocab/bert-base-uncased-vocab.txt"
[ -f "$train/qrels.txt" ] && [ -f "$dl19/run.BM25.txt" ] && [ -f "$vocab" ] ||
  { echo "error: shared data not found at $data" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
unset RANK WORLD_SIZE LOCAL_RANK LOCAL_WORLD_SIZE MASTER_ADDR OMPI_COMM_WORLD_SIZE OMPI_COMM_WORLD_RANK
port=$((20000 + RANDOM % 20000))

echo "setting up (tokenizer, teacher, student, teacher run)..." >&2
"$bin" train-tokenizer --kind bpe --vocab-size 8000 --docs "$train/docs.tsv" --queries "$train/queries.tsv" \
  --out "$tmp/tokenizer.json" > /dev/null
"$bin" init --config configs/models/decoder-mini.json --tokenizer "$tmp/tokenizer.json" --max-length 128 \
  --out "$tmp/teacher" > /dev/null
"$bin" init --config configs/models/bert-mini.json --tokenizer "$vocab" --max-length 128 \
  --out "$tmp/student" > /dev/null
"$bin" index --docs "$train/docs.tsv" --out "$tmp/index" > /dev/null
"$bin" retrieve --index "$tmp/index" --queries "$train/queries.tsv" --candidates-qrels "$train/qrels.txt" \
  --out "$tmp/teacher-run.txt" > /dev/null
head -4300 "$dl19/run.BM25.txt" > "$tmp/pool.txt"

# run NAME RANKS THREADS ARGS...: one configuration; 2 ranks start on a fresh loopback port.
run() {
  local name=$1 ranks=$2 threads=$3; shift 3
  if [ "$ranks" -eq 1 ]; then
    OMP_NUM_THREADS=$threads "$bin" "$@" --threads "$threads" > /dev/null 2> "$tmp/$name.err"
  else
    port=$((port + 1))
    local r pids=()
    for ((r = 1; r < ranks; r++)); do
      MASTER_PORT=$port WORLD_SIZE=$ranks RANK=$r OMP_NUM_THREADS=$threads "$bin" "$@" --threads "$threads" \
        > /dev/null 2> "$tmp/$name.rank$r.err" &
      pids+=($!)
    done
    MASTER_PORT=$port WORLD_SIZE=$ranks RANK=0 OMP_NUM_THREADS=$threads "$bin" "$@" --threads "$threads" \
      > /dev/null 2> "$tmp/$name.err"
    for p in "${pids[@]}"; do wait "$p"; done
  fi
}
configs=("1 1" "1 2" "2 1")
common=(--max-steps "$steps" --grad-accumulation 4 --save-every 0 --log-every 0 --quiet)
for c in "${configs[@]}"; do
  set -- $c; tag="p$1t$2"
  echo "configuration: $1 process(es) x $2 thread(s)..." >&2
  run "sft-$tag" "$1" "$2" sft --model "$tmp/teacher" --queries "$train/queries.tsv" --docs "$train/docs.tsv" \
    --qrels "$train/qrels.txt" --group-size 8 --groups-per-batch 2 --out "$tmp/sft-$tag" "${common[@]}"
  run "distill-$tag" "$1" "$2" distill --model "$tmp/student" --teacher-run "$tmp/teacher-run.txt" \
    --queries "$train/queries.tsv" --docs "$train/docs.tsv" --group-size 8 --groups-per-batch 4 \
    --out "$tmp/distill-$tag" "${common[@]}"
  run "score-$tag" "$1" "$2" score --model "$tmp/sft-p1t1/model" --queries "$dl19/queries.tsv" \
    --docs "$dl19/docs.tsv" --run "$tmp/pool.txt" --batch-size 32 --out "$tmp/score-$tag.txt"
done
for c in p2t1 p1t2; do cmp -s "$tmp/score-p1t1.txt" "$tmp/score-$c.txt" && echo "score $c: run identical to p1t1" >&2 ||
  echo "score $c: run differs from p1t1 (expected only for other thread counts)" >&2; done

python3 - "$tmp" <<'PY'
import json, re, sys, os
tmp = sys.argv[1]
def training(name):
    s = json.load(open(f"{tmp}/{name}/summary.json"))
    return s["units_per_second"]
def scoring(name):
    text = open(f"{tmp}/{name}.err").read()
    return float(re.search(r"\(([\d.]+) pairs/s", text).group(1))
rows = [("teacher sft (decoder-mini, pairs/s)", "sft", training),
        ("student distill (bert-mini, pairs/s)", "distill", training),
        ("teacher scoring (decoder-mini, 4,300 DL19 pairs, pairs/s)", "score", scoring)]
print("| work | 1 process × 1 thread | 1 process × 2 threads | 2 ranks × 1 thread | 2 ranks vs 1×1 (efficiency) | 2 ranks vs 1×2 |")
print("|---|---:|---:|---:|---:|---:|")
for label, stage, read in rows:
    a, b, c = (read(f"{stage}-{t}") for t in ("p1t1", "p1t2", "p2t1"))
    print(f"| {label} | {a:.1f} | {b:.1f} | {c:.1f} | {c / a:.2f}× ({c / a / 2:.0%}) | {c / b:.2f}× |")
# The teacher's cost per scored pair, for the 80M-pair estimate: forward FLOPs ≈ 2 × non-embedding parameters
# × tokens + the attention's 4 × layers × tokens² × hidden (an upper bound: causal attention does half).
config = json.load(open(f"{tmp}/teacher/config.json"))
h, layers, inter = config["hidden_size"], config["num_hidden_layers"], config["intermediate_size"]
heads = config["num_attention_heads"]
kv = config.get("num_key_value_heads") or heads
params = layers * (2 * h * h + 2 * h * (h * kv // heads) + 3 * h * inter)
text = open(f"{tmp}/score-p1t2.err").read()
tokens = float(re.search(r"([\d.]+) tokens per pair", text).group(1))
flops = 2 * params * tokens + 4 * layers * tokens * tokens * h
print()
for tag, label in (("p1t1", "1 process × 1 thread"), ("p1t2", "1 process × 2 threads"), ("p2t1", "2 ranks × 1 thread")):
    rate = scoring(f"score-{tag}")
    print(f"teacher scoring, {label}: {rate:.1f} pairs/s × {flops / 1e6:.1f} MFLOP/pair "
          f"({params / 1e6:.2f} M non-embedding parameters, {tokens:.1f} tokens/pair) = {rate * flops / 1e9:.1f} GFLOP/s")
PY
