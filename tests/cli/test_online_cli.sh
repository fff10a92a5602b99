#!/usr/bin/env bash
# `disranker online` end to end on TREC DL 2019: BM25 (A) against SPLADE++ (B, offline nDCG@10 +0.22) must show a
# significant online win (A/B page CTR and interleaving), BM25 against itself must not; the report is
# deterministic for a seed whatever the thread count; JSON and Markdown reports are written; misuse is refused
# with a message that says what is wrong. The false-positive rates over many seeds are checked in
# tests/test_online.cc (a single seed here is one draw: fixed, so the check is stable).
set -u
bin="$1"
root="$(cd "$(dirname "$0")/../.." && pwd)"
data="${DISRANKER_DATA:-$root/../shared/data}"
dl="$data/trec-dl19"
[ -f "$dl/run.SPLADE_P_P_ENSEMBLE_DISTIL.txt" ] || { echo "shared data not found at $data: skipped"; exit 77; }
command -v jq > /dev/null || { echo "jq not found: skipped"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAILED: $1"; fail=1; fi; }
json() { jq -e "$2" "$1" > /dev/null; }

bm25="$dl/run.BM25.txt"
splade="$dl/run.SPLADE_P_P_ENSEMBLE_DISTIL.txt"
# (CLI11 refuses an option given twice: what varies between calls is not in here.)
common=(online --qrels "$dl/qrels.txt" --queries "$dl/queries.tsv" --users 4000 --days 7 --bootstrap 300
        --budgets 300,3000)
curve=(--repetitions 40)

# --- BM25 against SPLADE++ (DBN, the default model) ---
"$bin" "${common[@]}" "${curve[@]}" --seed 3 --run "$bm25" --run "$splade" --out "$tmp/r.json" --markdown "$tmp/r.md" \
  > "$tmp/out.txt" 2> "$tmp/err.txt" || { cat "$tmp/err.txt"; fail=1; }
cat "$tmp/out.txt"
check "the table lists the paper's metrics" \
  'grep -q "^page CTR" "$tmp/out.txt" && grep -q "^user CTR" "$tmp/out.txt" && grep -q "^dwell per click" "$tmp/out.txt" && grep -q "^abandonment rate" "$tmp/out.txt"'
check "offline nDCG@10 of BM25 is trec_eval's 0.5058" 'grep -q "offline nDCG@10 A 0.5058" "$tmp/out.txt"'
check "all 43 judged queries are eligible" 'json "$tmp/r.json" ".queries.eligible == 43"'
check "pages: about users x days (4000 x 7)" \
  'json "$tmp/r.json" "(.ab_test.a.pages + .ab_test.b.pages) as \$n | \$n > 22000 and \$n < 34000"'
check "users are split about evenly" 'json "$tmp/r.json" ".ab_test.a.users + .ab_test.b.users == 4000 and .ab_test.b.users > 1800 and .ab_test.b.users < 2200"'
check "SPLADE++ raises page CTR (interval above 0)" 'json "$tmp/r.json" ".ab_test.metrics.page_ctr.ci_low > 0 and .ab_test.metrics.page_ctr.significant"'
check "SPLADE++ lowers abandonment" 'json "$tmp/r.json" ".ab_test.metrics.abandonment_rate.ci_high < 0"'
check "the interval holds the point estimate" \
  'json "$tmp/r.json" ".ab_test.metrics | to_entries | all(.value.ci_low <= .value.relative and .value.relative <= .value.ci_high)"'
check "interleaving prefers SPLADE++ (p < 0.001)" \
  'json "$tmp/r.json" ".interleaving.wins_b > .interleaving.wins_a and .interleaving.p_value < 0.001 and .interleaving.delta_ab > 0"'
check "wins + losses + ties = impressions" \
  'json "$tmp/r.json" ".interleaving | .wins_a + .wins_b + .ties == .impressions"'
check "sensitivity curve at 300 and 3000 impressions" \
  'json "$tmp/r.json" "[.sensitivity.points[].impressions] == [300, 3000]"'
check "interleaving power at 3000 impressions is at least the A/B test's" \
  'json "$tmp/r.json" ".sensitivity.points[1] | .interleaving_power >= .ab_power"'
check "impressions/s reported" 'json "$tmp/r.json" ".timing.impressions_per_second > 0" && grep -q "M impressions/s" "$tmp/out.txt"'
check "markdown report written" 'grep -q "^## A/B test" "$tmp/r.md" && grep -q "^| page CTR |" "$tmp/r.md"'

# --- deterministic for a seed, whatever the thread count ---
"$bin" "${common[@]}" "${curve[@]}" --seed 3 --run "$bm25" --run "$splade" --threads 1 --out "$tmp/r1.json" > /dev/null 2>&1 || fail=1
check "same seed, 1 thread: the same report" 'cmp -s <(jq -S "del(.timing)" "$tmp/r.json") <(jq -S "del(.timing)" "$tmp/r1.json")'
"$bin" "${common[@]}" "${curve[@]}" --seed 4 --run "$bm25" --run "$splade" --out "$tmp/r4.json" > /dev/null 2>&1 || fail=1
check "another seed: another draw" '! cmp -s <(jq -S "del(.timing)" "$tmp/r.json") <(jq -S "del(.timing)" "$tmp/r4.json")'

# --- A = B: no difference ---
"$bin" "${common[@]}" "${curve[@]}" --seed 3 --run "$bm25" --run "$bm25" --out "$tmp/same.json" > /dev/null 2>&1 || fail=1
check "A = B: the page CTR interval contains 0" \
  'json "$tmp/same.json" ".ab_test.metrics.page_ctr.ci_low <= 0 and .ab_test.metrics.page_ctr.ci_high >= 0"'
check "A = B: interleaving is not significant" 'json "$tmp/same.json" ".interleaving.p_value >= 0.05"'

# --- the other click models also see SPLADE++ win in interleaving ---
for model in pbm cascade; do
  "$bin" "${common[@]}" --run "$bm25" --run "$splade" --click-model "$model" --seed 3 --repetitions 0 \
    --out "$tmp/$model.json" > /dev/null 2> "$tmp/$model.err" || { cat "$tmp/$model.err"; fail=1; }
  check "$model: interleaving prefers SPLADE++" \
    'json "$tmp/$model.json" ".click_model.kind == \"$model\" and .interleaving.wins_b > .interleaving.wins_a and .interleaving.p_value < 0.001"'
done

# --- query weights: only the listed queries are issued ---
awk -F'\t' 'NR <= 2 {print $1 "\t" NR}' "$dl/queries.tsv" > "$tmp/weights.tsv"
"$bin" "${common[@]}" --run "$bm25" --run "$splade" --seed 3 --repetitions 0 --query-weights "$tmp/weights.tsv" \
  --out "$tmp/w.json" > /dev/null 2> "$tmp/w.err" || { cat "$tmp/w.err"; fail=1; }
check "query weights: 2 eligible queries, the rest left out" \
  'json "$tmp/w.json" ".queries.eligible == 2 and .queries.zero_weight == 41"'

# --- misuse ---
out=$("$bin" "${common[@]}" --run "$bm25" 2>&1) && fail=1
check "one run is refused" '[[ "$out" == *"exactly two runs"* ]]'
out=$("$bin" "${common[@]}" --run "$bm25" --run "$splade" --max-grade 3 --attractiveness 0.1,0.5 2>&1) && fail=1
check "a mapping with too few grades is refused" '[[ "$out" == *"one probability per grade"* ]]'
out=$("$bin" "${common[@]}" --run "$bm25" --run "$splade" --click-model ubm 2>&1) && fail=1
check "an unknown click model is refused" '[[ "$out" == *"ubm"* ]]'
printf 'q1\t-2\n' > "$tmp/bad.tsv"
out=$("$bin" "${common[@]}" --run "$bm25" --run "$splade" --query-weights "$tmp/bad.tsv" 2>&1) && fail=1
check "a negative query weight is refused with file:line" '[[ "$out" == *"bad.tsv:1: weight: must be >= 0"* ]]'
exit $fail
