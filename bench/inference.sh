#!/usr/bin/env bash
# Student inference, DisRanker against ONNX Runtime, in one run on the same pairs and threads: the TREC DL 2019
# BM25 top-100 lists (the first QUERIES queries, 100 candidates each) at MAX_LENGTH, for each model config.
#   1. bench/onnx_runtime.sh: the exported model (fp32, and ORT's dynamic int8 graph) in onnxruntime-node,
#      length-sorted batches of 32 and padded batches of 100 (one query);
#   2. build/bench/bench_infer: libtorch eager (padded 100, sorted 32) and the fast engine fp32 and int8 (one
#      call per query), with oneDNN's sgemm and u8s8s32 rates as the peaks, same threads;
#   3. ROUNDS − 1 more rounds of the head-to-head paths only (ORT's length-sorted batches, then the engine),
#      so that each side's figure is its best over passes minutes apart: on this shared 2-vCPU machine one
#      path's rate moves by up to ±15% from run to run, and a slow spell that hit only one side would
#      otherwise skew the ratio;
# then one Markdown table: pairs/s, ms per query, the ratio to ORT's best fp32 and best int8 (the faster of
# its two batchings) and the fraction of the peak reached on useful FLOPs (every real token, no padding).
#
# Usage: bench/inference.sh [BUILD_DIR] [CONFIG.json ...]   (default: bert-tiny, bert-mini, minilm-l6)
# env: MAX_LENGTH=256  QUERIES=10  THREADS="1 2"  REPEAT=2 (ORT's timed passes, the best kept, as bench_infer's)
#      ROUNDS=2  OUT_DIR (default: a temporary directory)
# Needs the build's bench/bench_infer, ./test.sh's node_modules (onnxruntime-node) and jq.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
shift || true
configs=("$@")
[ ${#configs[@]} -gt 0 ] || configs=("$root/configs/models/bert-tiny.json" "$root/configs/models/bert-mini.json"
  "$root/configs/models/minilm-l6.json")
data="${DISRANKER_DATA:-$root/../shared/data}"
vocab="$data/weights/vocab/bert-base-uncased-vocab.txt"
max_length="${MAX_LENGTH:-256}"
queries="${QUERIES:-10}"
threads="${THREADS:-1 2}"
command -v jq > /dev/null || { echo "inference.sh: jq is needed" >&2; exit 1; }
[ -x "$build/bench/bench_infer" ] || { echo "inference.sh: build bench/bench_infer first" >&2; exit 1; }
out="${OUT_DIR:-$(mktemp -d)}"
mkdir -p "$out/ort"
rm -f "$out/disranker.jsonl" "$out/ort/results.jsonl"

echo "inference.sh: ONNX Runtime ..." >&2
# Best of 2 timed passes on both sides (bench_infer times each path twice and keeps the faster).
OUT_DIR="$out/ort" MAX_LENGTHS="$max_length" QUERIES="$queries" THREADS="$threads" INT8=1 REPEAT="${REPEAT:-2}" \
  "$root/bench/onnx_runtime.sh" "$build" "${configs[@]}" > "$out/ort.md"
echo "inference.sh: DisRanker and libtorch ..." >&2
BENCH_QUERIES="$queries" BENCH_THREADS="$threads" BENCH_JSON="$out/disranker.jsonl" \
  "$build/bench/bench_infer" "$data" "$vocab" "$max_length" "${configs[@]}" > "$out/disranker.md"
for ((round = 2; round <= ${ROUNDS:-2}; ++round)); do
  echo "inference.sh: round $round: ONNX Runtime (length-sorted), then the DisRanker engine ..." >&2
  OUT_DIR="$out/ort" MAX_LENGTHS="$max_length" QUERIES="$queries" THREADS="$threads" INT8=1 REPEAT="${REPEAT:-2}" \
    MODES=sorted "$root/bench/onnx_runtime.sh" "$build" "${configs[@]}" >> "$out/ort.md"
  BENCH_QUERIES="$queries" BENCH_THREADS="$threads" BENCH_JSON="$out/disranker.jsonl" BENCH_PATHS="DisRanker engine" \
    "$build/bench/bench_infer" "$data" "$vocab" "$max_length" "${configs[@]}" >> "$out/disranker.md"
done

echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(date -u +%F)."
echo "Pairs: the first $queries TREC DL 2019 queries' BM25 top 100, max length $max_length."
echo
echo "| model | path | threads | pairs/s | ms / query | × ORT best fp32 | × ORT best int8 | % of peak |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
# Each path's best over the rounds; every row's "% of peak" against the best peaks of all rounds (the line after
# the table), not the peak measured beside the round it came from: a round whose sgemm timing hit a slow spell
# would otherwise show a path above 100%.
jq -rs --slurpfile ort_rounds "$out/ort/results.jsonl" '
  (group_by([.model, .threads]) | map({key: "\(.[0].model) \(.[0].threads)",
                                       value: {sgemm: (map(.sgemm_gflops) | max), int8: (map(.int8_gops) | max)}})
   | from_entries) as $peaks
  | (group_by([.model, .threads, .path]) | map(max_by(.pairs / .seconds))) as $ours
  | ($ort_rounds | group_by([.model, .threads, .weights, .mode]) | map(max_by(.pairs_per_s))) as $ort
  | ($ours | map(select(.path | test("engine fp32")))[0]) as $any
  | [ $ours[] | {model, threads, label: .path, pps: (.pairs / .seconds), ms: (1000 * .seconds / .queries),
                 flops: .useful_flops, seconds, peak: $peaks["\(.model) \(.threads)"][if (.path | test("int8")) then "int8" else "sgemm" end]} ]
    + [ $ort[] as $o
        | ($ours | map(select(.model == $o.model and .threads == $o.threads))[0]) as $ref
        | select($ref != null)
        | {model: $o.model, threads: $o.threads,
           label: ("ONNX Runtime " + $o.weights + ", " + (if $o.mode == "sorted" then "length-sorted batches of 32" else "padded batches of 100" end)),
           pps: $o.pairs_per_s, ms: $o.latency_ms.mean,
           flops: ($ref.useful_flops * $o.pairs / $ref.pairs), seconds: $o.seconds,
           peak: $peaks["\($o.model) \($o.threads)"][if $o.weights == "int8" then "int8" else "sgemm" end], ort: $o.weights} ]
  | group_by([.model, .threads])[]
  | (map(select(.ort == "fp32")) | map(.pps) | max) as $fp32
  | (map(select(.ort == "int8")) | map(.pps) | max) as $int8
  | .[]
  | "| \(.model) | \(.label) | \(.threads) | \(.pps * 10 | round / 10) | \(.ms | round) | \((.pps / $fp32) * 100 | round / 100) | \((.pps / $int8) * 100 | round / 100) | \((100 * .flops / .seconds / 1e9 / .peak) | round)% |"
' "$out/disranker.jsonl"
echo
echo "Peaks (same run, the best of its rounds): $(jq -rs 'group_by([.model, .threads]) | map(max_by(.sgemm_gflops)) | map("\(.model) \(.threads) thr: sgemm \(.sgemm_gflops | round) GFLOP/s, u8s8s32 \(.int8_gops | round) GOP/s") | unique | join("; ")' "$out/disranker.jsonl")"
echo "Raw results: $out"
