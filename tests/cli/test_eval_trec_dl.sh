#!/usr/bin/env bash
# `disranker eval` reproduces trec_eval's published BM25 nDCG@10 on TREC DL 2019 (0.5058) and 2021 (0.4458).
set -u
bin="$1"
data="${DISRANKER_DATA:-$(dirname "$0")/../../../shared/data}"
[ -f "$data/trec-dl19/run.BM25.txt" ] || { echo "shared data not found at $data: skipped"; exit 77; }
fail=0
for set_and_value in trec-dl19:0.5058 trec-dl21:0.4458; do
  set=${set_and_value%%:*}; want=${set_and_value#*:}
  got=$("$bin" eval --qrels "$data/$set/qrels.txt" --run "$data/$set/run.BM25.txt" -m ndcg_cut.10 --per-query \
        | awk '$2 == "all" {print $3}')
  if [ "$got" = "$want" ]; then echo "$set ndcg_cut.10 = $got (published $want)"; else echo "FAILED $set: $got != $want"; fail=1; fi
done
exit $fail
