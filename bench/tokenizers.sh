#!/usr/bin/env bash
# DisRanker's tokenizers against Hugging Face's (Rust, through its Node binding) on the same machine, same inputs,
# in one run, at 1 and 2 threads. Inputs: every query and document string of the shared English sets (WordPiece
# uncased and the byte-level BPE), and of the Chinese QBQTC sets (WordPiece bert-base-chinese).
# Usage: bench/tokenizers.sh [BUILD_DIR]     (needs bench_tokenizers built and tests/oracle/node_modules)
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
data="${DISRANKER_DATA:-../shared/data}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One string per line: queries, titles and texts (empty fields left out).
for s in trec-dl19 trec-dl21 trec-dl22 wikiqa-train wikiqa-dev cranfield cisi; do
  cut -f2 "$data/$s/queries.tsv"; cut -f2,3 "$data/$s/docs.tsv" | tr '\t' '\n'
done | grep -v '^ *$' > "$work/en.txt"
for s in qbqtc-train qbqtc-dev; do
  cut -f2 "$data/$s/queries.tsv"; cut -f2,3 "$data/$s/docs.tsv" | tr '\t' '\n'
done | grep -v '^ *$' > "$work/zh.txt"

# A byte-level BPE tokenizer.json trained by Hugging Face's library on the English text (vocab 8000).
node tests/oracle/hf_train_bpe.js --out "$work/bpe.json" --vocab-size 8000 --style gpt2 "$work/en.txt" >/dev/null

run() {  # name tokenizer input
  for threads in 1 2; do
    ours=$(OMP_NUM_THREADS=1 "$build/bench/bench_tokenizers" --tokenizer "$2" --input "$3" --threads "$threads")
    theirs=$(RAYON_NUM_THREADS=$threads node bench/hf_tokenizers_bench.js --tokenizer "$2" --input "$3" --threads "$threads")
    python3 - "$1" "$ours" "$theirs" <<'PY'
import json, sys
name, ours, theirs = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
def rate(r): return r["bytes"] / r["seconds"] / 1e6, r["strings"] / r["seconds"]
mo, so = rate(ours); mt, st = rate(theirs)
same = "same token count" if ours["tokens"] == theirs["tokens"] else f"TOKEN COUNTS DIFFER {ours['tokens']} vs {theirs['tokens']}"
print(f"| {name} | {ours['threads']} | {ours['strings']:,} | {ours['bytes']/1e6:.1f} | {mo:.1f} | {so:,.0f} | {mt:.1f} | {st:,.0f} | {mo/mt:.2f}x | {same} |")
PY
  done
}

echo "| tokenizer | threads | strings | MB | DisRanker MB/s | DisRanker strings/s | HF MB/s | HF strings/s | DisRanker / HF | check |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
run "WordPiece bert-base-uncased (en)" "$data/weights/vocab/bert-base-uncased-vocab.txt" "$work/en.txt"
run "WordPiece bert-base-chinese (zh)" "$data/weights/vocab/bert-base-chinese-vocab.txt" "$work/zh.txt"
run "byte-level BPE, 8k, GPT-2 regex (en)" "$work/bpe.json" "$work/en.txt"
