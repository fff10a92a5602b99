#!/usr/bin/env bash
# Training throughput of each stage at the quickstart sizes, against the raw optimiser step of the same model
# (build/bench/bench_train_step: forward + loss + backward + AdamW on a fixed random batch, nothing else).
# Usage: bench/train_throughput.sh [BUILD_DIR] [STEPS]   (DISRANKER_DATA: the shared data; run on a quiet machine)
# Prints a Markdown table: each stage's throughput from its summary.json (whole run: data loading, tokenization,
# sampling and the first steps included), the raw step's, and their ratio. The stages' sequences are as long as
# their data (dynamic padding), the raw steps' fixed: a ratio above 1 means the data is shorter than the raw shape.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
steps="${2:-60}"
bin="$build/disranker"
data="${DISRANKER_DATA:-../shared/data}"
train="$data/wikiqa-train"
vocab="$data/weights/vocab/bert-base-uncased-vocab.txt"
[ -f "$train/qrels.txt" ] && [ -f "$vocab" ] || { echo "error: shared data not found at $data" >&2; exit 1; }
[ -x "$build/bench/bench_train_step" ] || { echo "error: $build/bench/bench_train_step not built" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
threads=2

echo "setting up (tokenizer, models, CPT pairs, teacher run)..." >&2
"$bin" train-tokenizer --kind bpe --vocab-size 8000 --docs "$train/docs.tsv" --queries "$train/queries.tsv" \
  --out "$tmp/tokenizer.json" > /dev/null
"$bin" init --config configs/models/decoder-mini.json --tokenizer "$tmp/tokenizer.json" --max-length 128 \
  --out "$tmp/teacher" > /dev/null
"$bin" init --config configs/models/bert-mini.json --tokenizer "$vocab" --mlm-head --max-length 128 \
  --out "$tmp/student" > /dev/null
"$bin" clicks cpt-pairs --from-qrels --queries "$train/queries.tsv" --docs "$train/docs.tsv" \
  --qrels "$train/qrels.txt" --out "$tmp/pairs.tsv" > /dev/null
# Any scores serve as the "teacher run" for timing distillation: BM25's.
"$bin" index --docs "$train/docs.tsv" --out "$tmp/index" > /dev/null
"$bin" retrieve --index "$tmp/index" --queries "$train/queries.tsv" --candidates-qrels "$train/qrels.txt" \
  --out "$tmp/teacher-run.txt" > /dev/null

common=(--threads "$threads" --max-steps "$steps" --save-every 0 --log-every 0 --quiet)
rank=(--queries "$train/queries.tsv" --docs "$train/docs.tsv" --qrels "$train/qrels.txt")
echo "stages ($steps steps each, $threads threads)..." >&2
"$bin" cpt --model "$tmp/teacher" --pairs "$tmp/pairs.tsv" --text "$train/docs.tsv" --batch-size 16 \
  --max-length 128 --out "$tmp/cpt" "${common[@]}" > /dev/null 2>&1
"$bin" sft --model "$tmp/teacher" "${rank[@]}" --group-size 8 --groups-per-batch 4 --out "$tmp/sft" \
  "${common[@]}" > /dev/null 2>&1
"$bin" mlm --model "$tmp/student" --text "$train/docs.tsv" --batch-size 32 --max-length 128 --out "$tmp/mlm" \
  "${common[@]}" > /dev/null 2>&1
"$bin" distill --model "$tmp/student" --teacher-run "$tmp/teacher-run.txt" --queries "$train/queries.tsv" \
  --docs "$train/docs.tsv" --group-size 8 --groups-per-batch 8 --out "$tmp/distill" "${common[@]}" > /dev/null 2>&1

echo "raw steps (bench_train_step)..." >&2
"$build/bench/bench_train_step" --benchmark_filter="/$threads/" --benchmark_format=json > "$tmp/raw.json" 2>/dev/null

python3 - "$tmp" "$threads" <<'EOF'
import json, sys
tmp, threads = sys.argv[1], sys.argv[2]
raw = {b["name"].split("/")[0]: b for b in json.load(open(f"{tmp}/raw.json"))["benchmarks"]}
def raw_rate(name, per_step):
    b = raw[name]
    seconds = b["real_time"] / {"ms": 1e3, "us": 1e6, "ns": 1e9}[b["time_unit"]]
    return per_step / seconds
def stage(name):
    return json.load(open(f"{tmp}/{name}/summary.json"))
rows = [
    ("cpt (decoder-mini, 16 x 128 packed)", "tokens/s", stage("cpt")["tokens_per_second"],
     raw_rate("BM_DecoderLmStep", 16 * 128), "LM step 16 x 128"),
    ("sft teacher (decoder-mini, 4 groups x 8)", "pairs/s", stage("sft")["units_per_second"],
     raw_rate("BM_DecoderScoreStep", 32), "score step 32 x 64"),
    ("mlm student (bert-mini, 32 x 128)", "tokens/s", stage("mlm")["tokens_per_second"],
     raw_rate("BM_BertMlmStep", 32 * 128), "MLM step 32 x 128"),
    ("distill student (bert-mini, 8 groups x 8)", "pairs/s", stage("distill")["units_per_second"],
     raw_rate("BM_BertScoreStep", 32), "score step 32 x 64"),
]
print(f"| stage | unit | stage throughput | raw step | raw throughput | stage / raw |")
print(f"| --- | --- | ---: | --- | ---: | ---: |")
for name, unit, got, base, base_name in rows:
    print(f"| {name} | {unit} | {got:,.0f} | {base_name} | {base:,.0f} | {got / base:.2f} |")
EOF
