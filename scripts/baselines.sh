#!/usr/bin/env bash
# Evaluates the shared candidate runs of TREC DL and DisRanker's BM25 on every shared set, printing one metrics
# table per set. Usage: scripts/baselines.sh DISRANKER_BIN OUT_DIR
set -euo pipefail
bin="$1"
out="$2"
data="${DISRANKER_DATA:-../shared/data}"
for need in trec-dl19 trec-dl21 cranfield cisi wikiqa-dev qbqtc-dev; do
  [ -d "$data/$need" ] || { echo "error: shared data set $data/$need is missing (set DISRANKER_DATA)" >&2; exit 1; }
done
mkdir -p "$out"

for set in trec-dl19 trec-dl21; do
  echo "== $set: shared first-stage runs (trec_eval semantics; binary metrics at grade >= 2, as TREC DL) =="
  "$bin" eval --qrels "$data/$set/qrels.txt" $(for r in "$data/$set"/run.*.txt; do echo --run "$r"; done) -l 2
  echo
done

# DisRanker's own BM25 (Xapian) over each collection. WikiQA: the usual protocol keeps questions with a positive.
for set in cranfield cisi wikiqa-dev qbqtc-dev trec-dl19; do
  index="$out/index/$set"
  # Cranfield's documents 471 and 995 are empty in the original collection: kept, so that their ids still rank.
  [ -d "$index" ] || "$bin" index --docs "$data/$set/docs.tsv" --out "$index" --allow-empty-docs
  "$bin" retrieve --index "$index" --queries "$data/$set/queries.tsv" --k 100 --out "$out/$set.bm25.txt"
  extra=()
  [ "$set" = wikiqa-dev ] && extra=(--require-relevant)
  [ "$set" = trec-dl19 ] && extra=(-l 2)
  echo "== $set: DisRanker BM25 (Xapian, top 100) =="
  "$bin" eval --qrels "$data/$set/qrels.txt" --run "$out/$set.bm25.txt" "${extra[@]}"
  echo
done
