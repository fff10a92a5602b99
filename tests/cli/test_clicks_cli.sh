#!/usr/bin/env bash
# The click pipeline end to end on real data: `clicks simulate` (WikiQA without a run, TREC DL 2019 with its BM25
# run) -> `clicks labels` -> `clicks cpt-pairs`, plus WikiQA's question -> clicked page pairs and
# `train-tokenizer` on a small documents file. Checks that the outputs are well-formed, deterministic and sane
# (debiased click labels agree with the qrels they were simulated from).
set -u
bin="$1"
root="$(cd "$(dirname "$0")/../.." && pwd)"
data="${DISRANKER_DATA:-$root/../shared/data}"
wiki="$data/wikiqa-dev"
[ -f "$wiki/qrels.txt" ] || { echo "shared data not found at $data: skipped"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAILED: $1"; fail=1; fi; }

# --- simulate (WikiQA: no run, the judged sentences in a fixed shuffle per question) ---
sim=(clicks simulate --qrels "$wiki/qrels.txt" --queries "$wiki/queries.tsv" --docs "$wiki/docs.tsv"
     --sessions 6000 --seed 5)
"$bin" "${sim[@]}" --out "$tmp/clicks.jsonl" 2> "$tmp/simulate.log" || { cat "$tmp/simulate.log"; fail=1; }
"$bin" "${sim[@]}" --out "$tmp/clicks2.jsonl" 2> /dev/null || fail=1
check "simulate wrote one impression per session" '[ "$(wc -l < "$tmp/clicks.jsonl")" -eq 6000 ]'
check "simulate is deterministic for a seed" 'cmp -s "$tmp/clicks.jsonl" "$tmp/clicks2.jsonl"'
check "simulate summary names sessions and CTR by position" \
  'grep -q "simulated 6000 sessions over 296 queries" "$tmp/simulate.log" && grep -q "^position" "$tmp/simulate.log"'
# PBM with eta 1: CTR falls with the position (rank 1 above rank 5 above rank 10).
ctr() { awk -v k="$1" '$1 == k {print $4}' "$tmp/simulate.log"; }
check "CTR decreases with the position" "awk -v a=$(ctr 1) -v b=$(ctr 5) -v c=$(ctr 10) 'BEGIN {exit !(a > b && b > c)}'"

# --- labels: IPW pseudo-grades of the true positives are above those of the true negatives ---
"$bin" clicks labels --clicks "$tmp/clicks.jsonl" --out "$tmp/labels.txt" --thresholds 0.3,0.6 2> "$tmp/labels.log" \
  || { cat "$tmp/labels.log"; fail=1; }
check "labels wrote qrels" '[ -s "$tmp/labels.txt" ] && awk "NF != 4 {exit 1}" "$tmp/labels.txt"'
mean_by_truth() {  # mean pseudo-grade of the pairs whose true grade is $1
  awk -v g="$1" 'NR == FNR {truth[$1 " " $3] = $4; next}
    truth[$1 " " $3] == g {sum += $4; n++} END {printf "%.3f", n ? sum / n : -1}' "$wiki/qrels.txt" "$tmp/labels.txt"
}
pos=$(mean_by_truth 1); neg=$(mean_by_truth 0)
check "IPW labels: positives $pos > negatives $neg (mean pseudo-grade)" \
  "awk -v p=$pos -v n=$neg 'BEGIN {exit !(p > 1.5 && n < 0.5)}'"
check "labels report counts" 'grep -q "labelled" "$tmp/labels.log" && grep -q "grades:" "$tmp/labels.log"'

# --- cpt-pairs from the click log ---
"$bin" clicks cpt-pairs --clicks "$tmp/clicks.jsonl" --out "$tmp/pairs.tsv" 2> "$tmp/pairs.log" \
  || { cat "$tmp/pairs.log"; fail=1; }
check "click pairs have three columns" '[ -s "$tmp/pairs.tsv" ] && awk -F"\t" "NF != 3 {exit 1}" "$tmp/pairs.tsv"'
check "click pairs are unique" '[ "$(sort "$tmp/pairs.tsv" | uniq -d | wc -l)" -eq 0 ]'
check "click pairs' queries are WikiQA questions" \
  'awk -F"\t" "NR == FNR {q[\$2]; next} !(\$1 in q) {exit 1}" "$wiki/queries.tsv" "$tmp/pairs.tsv"'
check "cpt-pairs reports dropped clicks" 'grep -q "dwell < 10000 ms" "$tmp/pairs.log"'
"$bin" clicks cpt-pairs --clicks "$tmp/clicks.jsonl" --out "$tmp/all.tsv" --min-dwell-ms 0 --no-dedup 2> /dev/null
check "--min-dwell-ms 0 --no-dedup keeps every click" \
  '[ "$(wc -l < "$tmp/all.tsv")" -eq "$(grep -o "\"clicked\":true" "$tmp/clicks.jsonl" | wc -l)" ]'

# --- cpt-pairs from WikiQA's qrels: one page pair per question, one pair per positive sentence ---
qp=(clicks cpt-pairs --from-qrels --queries "$wiki/queries.tsv" --docs "$wiki/docs.tsv" --qrels "$wiki/qrels.txt")
"$bin" "${qp[@]}" --out "$tmp/page.tsv" 2> "$tmp/page.log" || { cat "$tmp/page.log"; fail=1; }
"$bin" "${qp[@]}" --target positive --out "$tmp/positive.tsv" 2> /dev/null || fail=1
questions=$(cut -d' ' -f1 "$wiki/qrels.txt" | sort -u | wc -l)
positives=$(awk '$4 >= 1' "$wiki/qrels.txt" | wc -l)
check "page target: one pair per question ($questions)" '[ "$(wc -l < "$tmp/page.tsv")" -eq "$questions" ]'
check "positive target: one pair per positive sentence ($positives)" '[ "$(wc -l < "$tmp/positive.tsv")" -eq "$positives" ]'
check "page pairs report questions without a positive" 'grep -q "questions without a positive" "$tmp/page.log"'

# --- misuse is an error that says what to do ---
out=$("$bin" clicks cpt-pairs --clicks "$tmp/clicks.jsonl" --from-qrels --out "$tmp/x.tsv" 2>&1) && fail=1
check "--clicks with --from-qrels is refused" '[[ "$out" == *"either --clicks or --from-qrels"* ]]'

# --- TREC DL 2019 with its BM25 run and the cascade model ---
dl="$data/trec-dl19"
if [ -f "$dl/run.BM25.txt" ]; then
  "$bin" clicks simulate --qrels "$dl/qrels.txt" --queries "$dl/queries.tsv" --docs "$dl/docs.tsv" \
    --run "$dl/run.BM25.txt" --model cascade --sessions 500 --seed 1 --out "$tmp/dl.jsonl" 2> "$tmp/dl.log" \
    || { cat "$tmp/dl.log"; fail=1; }
  check "TREC DL pages are the run's top 10" '[ "$(grep -c "\"position\":10," "$tmp/dl.jsonl")" -eq 500 ]'
  first=$(head -1 "$tmp/dl.jsonl" | grep -o '"qid":"[0-9]*"' | grep -o '[0-9]*')
  top=$(awk -v q="$first" '$1 == q && $4 == 1 {print $3}' "$dl/run.BM25.txt")
  check "TREC DL rank 1 is the run's rank 1" 'head -1 "$tmp/dl.jsonl" | grep -q "\"docid\":\"$top\",\"dwell_ms\":[0-9.]*,\"position\":1,"'
  # DBN with no patience (--gamma 0): a result that does not satisfy ends the page, so only rank 1 is ever
  # examined and clicked; with --gamma 1 it is the cascade and deeper clicks appear.
  for gamma in 0 1; do
    "$bin" clicks simulate --qrels "$dl/qrels.txt" --queries "$dl/queries.tsv" --docs "$dl/docs.tsv" \
      --run "$dl/run.BM25.txt" --model dbn --gamma "$gamma" --sessions 300 --seed 1 --out "$tmp/dbn$gamma.jsonl" \
      2> /dev/null || fail=1
  done
  check "DBN --gamma 0 clicks rank 1 only" '! grep -q "\"clicked\":true,[^}]*\"position\":[2-9]" "$tmp/dbn0.jsonl" && grep -q "\"clicked\":true,[^}]*\"position\":1," "$tmp/dbn0.jsonl"'
  check "DBN --gamma 1 clicks deeper too" 'grep -q "\"clicked\":true,[^}]*\"position\":[2-9]" "$tmp/dbn1.jsonl"'
else
  echo "trec-dl19 not found: its part skipped"
fi

# --- train-tokenizer on a small documents file ---
head -300 "$wiki/docs.tsv" > "$tmp/docs.tsv"
mkdir "$tmp/tok"
"$bin" train-tokenizer --kind bpe --docs "$tmp/docs.tsv" --vocab-size 600 --out "$tmp/tok" 2> "$tmp/bpe.log" \
  || { cat "$tmp/bpe.log"; fail=1; }
"$bin" train-tokenizer --kind bpe --docs "$tmp/docs.tsv" --vocab-size 600 --out "$tmp/again.json" 2> /dev/null
check "bpe: tokenizer.json written and deterministic" 'cmp -s "$tmp/tok/tokenizer.json" "$tmp/again.json"'
check "bpe: reports what it trained" 'grep -q "trained a byte-level BPE tokenizer: 600 tokens" "$tmp/bpe.log"'
ids=$(echo "Cross section of sclerenchyma fibers" | "$bin" tokenize --tokenizer "$tmp/tok/tokenizer.json" --format ids)
check "bpe: the trained tokenizer loads and its ids are in range ($ids)" \
  '[ -n "$ids" ] && echo "$ids" | tr " " "\n" | awk "\$1 >= 600 {exit 1}"'
"$bin" train-tokenizer --kind wordpiece --docs "$tmp/docs.tsv" --vocab-size 400 --lowercase --out "$tmp/tok" \
  2> "$tmp/wp.log" || { cat "$tmp/wp.log"; fail=1; }
check "wordpiece: vocab.txt of 400 tokens, [PAD] first" \
  '[ "$(wc -l < "$tmp/tok/vocab.txt")" -eq 400 ] && [ "$(head -1 "$tmp/tok/vocab.txt")" = "[PAD]" ]'
check "wordpiece: do_lower_case recorded" 'grep -q "\"do_lower_case\": true" "$tmp/tok/tokenizer_config.json"'
out=$("$bin" train-tokenizer --kind bpe --vocab-size 600 --out "$tmp/x.json" 2>&1) && fail=1
check "train-tokenizer without input is refused" '[[ "$out" == *"needs some text"* ]]'
exit $fail
