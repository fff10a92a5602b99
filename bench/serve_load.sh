#!/usr/bin/env bash
# Load test of `disranker serve` on loopback: the TREC DL 2019 BM25 top-100 of each of its 43 queries as rerank
# requests (100 candidates per query), at 1, 4 and 16 concurrent clients, for each student architecture given
# (default: bert-tiny, the quickstart's student, and minilm-l6, the paper's 6-layer class). Baseline: the offline
# `disranker score` of the same 4,300 pairs with the same model on the same machine in the same run; the table
# gives served documents/s as a ratio of it.
#
# Usage: bench/serve_load.sh [BUILD_DIR] [MODEL_CONFIG ...]
# env: DURATION=15 WARMUP=3 CLIENTS=1,4,16, SERVE_FLAGS (extra `disranker serve` flags, e.g. "--batch-pairs 64")
# The models are freshly initialised (speed does not depend on the weights) with the bert-base-uncased vocabulary
# and max_length 128, as the quickstart's student. Results go to stdout as Markdown and to $OUT_DIR (default a
# temporary directory) as JSON.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
shift || true
configs=("$@")
[ ${#configs[@]} -gt 0 ] || configs=("$root/configs/models/bert-tiny.json" "$root/configs/models/minilm-l6.json")
data="${DISRANKER_DATA:-$root/../shared/data}"
set_dir="$data/trec-dl19"
vocab="$data/weights/vocab/bert-base-uncased-vocab.txt"
bin="$build/disranker"
load="$build/bench/serve_load"
for f in "$set_dir/queries.tsv" "$set_dir/docs.tsv" "$set_dir/run.BM25.txt" "$vocab" "$bin" "$load"; do
  [ -e "$f" ] || { echo "serve_load.sh: missing $f (build with scripts/build.sh; data in DISRANKER_DATA)" >&2; exit 1; }
done
command -v jq > /dev/null && command -v curl > /dev/null || { echo "serve_load.sh: needs jq and curl" >&2; exit 1; }
out_dir="${OUT_DIR:-$(mktemp -d)}"
mkdir -p "$out_dir"
server=""
trap '[ -n "$server" ] && kill "$server" 2> /dev/null; true' EXIT

# One request per query: {"query", "documents": [{"id", "title", "text"}]} in BM25 rank order.
awk -F'\t' 'FILENAME == ARGV[1] { query[$1] = $2; next }
            FILENAME == ARGV[2] { doc[$1] = $2 "\t" $3; next }
            { split($0, f, " "); print f[1] "\t" query[f[1]] "\t" f[3] "\t" doc[f[3]] }' \
  "$set_dir/queries.tsv" "$set_dir/docs.tsv" "$set_dir/run.BM25.txt" |
  jq -Rnc 'reduce (inputs | split("\t")) as $f ({}; .[$f[0]] |= {query: $f[1],
             documents: ((.documents // []) + [{id: $f[2], title: $f[3], text: $f[4]}])}) | .[]' \
  > "$out_dir/requests.jsonl"
echo "requests: $(wc -l < "$out_dir/requests.jsonl") queries, $(jq '.documents | length' "$out_dir/requests.jsonl" | sort -u | tr '\n' ' ')documents each" >&2

echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo); model threads $(nproc) (serve's default engine: auto), HTTP threads 32."
for config in "${configs[@]}"; do
  name="$(basename "$config" .json)"
  model="$out_dir/model-$name"
  "$bin" init --config "$config" --tokenizer "$vocab" --out "$model" --max-length 128 > /dev/null

  # Baseline: offline scoring of the same pairs (reading, tokenizing and writing included).
  start=$(date +%s%N)
  "$bin" score --model "$model" --queries "$set_dir/queries.tsv" --docs "$set_dir/docs.tsv" \
    --run "$set_dir/run.BM25.txt" --out "$out_dir/offline-$name.txt" 2> /dev/null
  offline_s=$(awk -v a="$start" -v b="$(date +%s%N)" 'BEGIN { print (b - a) / 1e9 }')
  pairs=$(wc -l < "$out_dir/offline-$name.txt")
  offline_dps=$(awk -v n="$pairs" -v s="$offline_s" 'BEGIN { print n / s }')

  port=$((20000 + RANDOM % 20000))
  "$bin" serve --model "$model" --port "$port" --http-threads 32 ${SERVE_FLAGS:-} 2> "$out_dir/serve-$name.log" &
  server=$!
  for _ in $(seq 200); do curl -sf "http://127.0.0.1:$port/health" > /dev/null 2>&1 && break; sleep 0.1; done
  echo
  echo "### $name: offline \`disranker score\` $(printf '%.0f' "$offline_dps") docs/s ($pairs pairs in $(printf '%.1f' "$offline_s") s)"
  echo
  "$load" --port "$port" --requests "$out_dir/requests.jsonl" --clients "${CLIENTS:-1,4,16}" \
    --warmup "${WARMUP:-3}" --duration "${DURATION:-15}" --server-pid "$server" --out "$out_dir/load-$name.json" \
    || echo "(errors: see $out_dir/load-$name.json)"
  jq -r --argjson base "$offline_dps" \
    '"served docs/s ÷ offline docs/s: " + ([.[] | "\(.clients) client(s) \((.documents_per_s / $base * 100 | round) / 100)"] | join(", "))' \
    "$out_dir/load-$name.json"
  kill -TERM "$server"
  wait "$server" || { echo "serve exited with $? after SIGTERM"; exit 1; }
  server=""
done
echo
echo "JSON and logs: $out_dir" >&2
