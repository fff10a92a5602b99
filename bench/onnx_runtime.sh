#!/usr/bin/env bash
# Exported students in ONNX Runtime (onnxruntime-node, CPU) on the TREC DL 2019 BM25 top-100 (43 queries, 4,300
# pairs): `disranker export --format onnx` (fp32, and --int8), pairs encoded by `disranker tokenize --pair`
# ([CLS] query [SEP] title [SEP] text [SEP], the model's vocab.txt) at each max length, then bench/onnx_runtime_bench.js
# at 1 and 2 intra-op threads with (a) length-sorted batches of 32 and (b) one padded batch of 100 per query.
#
# Usage: bench/onnx_runtime.sh [BUILD_DIR] [MODEL ...]
#   MODEL: a model directory (config.json + model.safetensors + vocab.txt), or a BERT config .json, from which a
#          random model is made with tests/oracle/tiny_bert.js and the bert-base-uncased vocabulary (speed does
#          not depend on the weights). Default: configs/models/bert-tiny.json and configs/models/minilm-l6.json.
# env: MAX_LENGTHS="128 256"  THREADS="1 2"  INT8=1 (0: fp32 only)  QUERIES=43 (the first N queries)  REPEAT=1
#      MODES="sorted query" (the batchings: length-sorted batches of 32, one padded batch per query)
# Prints a Markdown table; the JSON lines go to $OUT_DIR (default: a temporary directory).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
shift || true
models=("$@")
[ ${#models[@]} -gt 0 ] || models=("$root/configs/models/bert-tiny.json" "$root/configs/models/minilm-l6.json")
data="${DISRANKER_DATA:-$root/../shared/data}"
set_dir="$data/trec-dl19"
vocab="$data/weights/vocab/bert-base-uncased-vocab.txt"
bin="$build/disranker"
for f in "$set_dir/queries.tsv" "$set_dir/docs.tsv" "$set_dir/run.BM25.txt" "$vocab" "$bin" \
  "$root/tests/oracle/node_modules/onnxruntime-node"; do
  [ -e "$f" ] || { echo "onnx_runtime.sh: missing $f (build, ./test.sh for node_modules, DISRANKER_DATA)" >&2; exit 1; }
done
out_dir="${OUT_DIR:-$(mktemp -d)}"
mkdir -p "$out_dir"
max_lengths=(${MAX_LENGTHS:-128 256})
# Without VNNI ONNX Runtime's u8 × s8 kernels saturate on full-range int8 weights (docs/export.md): export
# them in [-64, 64] there, as its own quantize_dynamic(reduce_range=True) would.
reduce_range=()
grep -qwE 'avx512_vnni|avx_vnni' /proc/cpuinfo || reduce_range=(--reduce-range)
threads_list=(${THREADS:-1 2})

# The pairs in BM25 order: qid, then query<TAB>title<TAB>text for `disranker tokenize --pair`.
awk -F'\t' 'FILENAME == ARGV[1] { query[$1] = $2; next }
            FILENAME == ARGV[2] { doc[$1] = $2 "\t" $3; next }
            { split($0, f, " "); print f[1] "\t" query[f[1]] "\t" doc[f[3]] }' \
  "$set_dir/queries.tsv" "$set_dir/docs.tsv" "$set_dir/run.BM25.txt" \
  | awk -F'\t' -v n="${QUERIES:-43}" '!($1 in seen) { seen[$1] = 1; ++count } count <= n' > "$out_dir/pairs.tsv"
cut -f1 "$out_dir/pairs.tsv" > "$out_dir/qids.txt"
echo "pairs: $(wc -l < "$out_dir/qids.txt"), queries: $(sort -u "$out_dir/qids.txt" | wc -l)" >&2

echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)); ONNX Runtime" \
  "$(node -p "require('$root/tests/oracle/node_modules/onnxruntime-node/package.json').version")" \
  "(onnxruntime-node${reduce_range[@]:+; no VNNI: int8 weights exported with --reduce-range})."
echo
echo "| model | weights | max length | threads | batching | pairs/s | ms per query (mean / p95) | padding |"
echo "| --- | --- | ---: | ---: | --- | ---: | ---: | ---: |"
for model in "${models[@]}"; do
  name="$(basename "$model" .json)"
  if [ -d "$model" ]; then
    dir="$model"
  else
    dir="$out_dir/model-$name"
    node "$root/tests/oracle/tiny_bert.js" --out "$dir" --config "$model" --vocab-file "$vocab" --max-position 512
  fi
  variants=(fp32)
  "$bin" export --format onnx --model "$dir" --out "$out_dir/$name-fp32.onnx" > /dev/null
  if [ "${INT8:-1}" = 1 ]; then
    "$bin" export --format onnx --model "$dir" --out "$out_dir/$name-int8.onnx" --int8 "${reduce_range[@]}" > /dev/null
    variants+=(int8)
  fi
  for length in "${max_lengths[@]}"; do
    cut -f2- "$out_dir/pairs.tsv" \
      | "$bin" tokenize --tokenizer "$dir/vocab.txt" --pair --format json --max-length "$length" \
      > "$out_dir/pairs-$name-$length.jsonl"
    for variant in "${variants[@]}"; do
      for threads in "${threads_list[@]}"; do
        for mode in ${MODES:-sorted query}; do
          json=$(OMP_NUM_THREADS="$threads" node "$root/bench/onnx_runtime_bench.js" \
            --onnx "$out_dir/$name-$variant.onnx" --pairs "$out_dir/pairs-$name-$length.jsonl" \
            --qids "$out_dir/qids.txt" --mode "$mode" --batch-size 32 --threads "$threads" --repeat "${REPEAT:-1}")
          echo "$json" | jq -c --arg model "$name" --arg weights "$variant" --argjson max_length "$length" \
            '. + {model: $model, weights: $weights, max_length: $max_length}' >> "$out_dir/results.jsonl"
          node -e '
            const [name, variant, length, r] = [process.argv[1], process.argv[2], process.argv[3], JSON.parse(process.argv[4])];
            const batching = r.mode === "sorted" ? "sorted, 32" : "per query, 100";
            const latency = r.mode === "sorted" ? `${r.latency_ms.mean.toFixed(1)} (amortised)`
                                                 : `${r.latency_ms.mean.toFixed(1)} / ${r.latency_ms.p95.toFixed(1)}`;
            console.log(`| ${name} | ${variant} | ${length} | ${r.threads} | ${batching} | ${r.pairs_per_s.toFixed(0)} | ${latency} | ${r.padding_overhead.toFixed(2)}x |`);
          ' "$name" "$variant" "$length" "$json"
        done
      done
    done
  done
done
