#!/usr/bin/env bash
# `disranker cpt` and `disranker mlm` end to end on WikiQA (shared data): tokenizers trained on the corpus,
# tiny models from `disranker init`, CPT pairs from `disranker clicks cpt-pairs --from-qrels`, a few training
# steps of each stage, and resume after a kill: a run ended abruptly after step 2 (exit 137) and resumed with
# --resume reaches exactly the final loss of an uninterrupted run. Also: the errors for the wrong model or
# empty inputs.
set -u
bin="$1"
root="$(cd "$(dirname "$0")/../.." && pwd)"
data="${DISRANKER_DATA:-$root/../shared/data}"
[ -f "$data/wikiqa-dev/queries.tsv" ] || { echo "shared data not found at $data: skipped"; exit 77; }
dev="$data/wikiqa-dev"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS=1
fail=0
check() { "$@" > "$tmp/log" 2>&1 || { echo "FAILED: $*"; tail -n 20 "$tmp/log"; fail=1; }; }
final_loss() { grep -o '"final_loss": [^,]*' "$1/summary.json"; }

# ---- CPT of a tiny decoder teacher -------------------------------------------------------------------------
check "$bin" train-tokenizer --kind bpe --vocab-size 400 --docs "$dev/docs.tsv" \
  --out "$tmp/bpe.json"
check "$bin" init --config "$root/configs/models/decoder-tiny.json" --tokenizer "$tmp/bpe.json" \
  --max-length 96 --out "$tmp/teacher"
check "$bin" clicks cpt-pairs --from-qrels --queries "$dev/queries.tsv" --docs "$dev/docs.tsv" \
  --qrels "$dev/qrels.txt" --out "$tmp/pairs-all.tsv"
head -n 48 "$tmp/pairs-all.tsv" > "$tmp/pairs.tsv"
tail -n 8 "$tmp/pairs-all.tsv" > "$tmp/dev-pairs.tsv"
cpt=("$bin" cpt --model "$tmp/teacher" --pairs "$tmp/pairs.tsv" --text "$dev/docs.tsv" --text-ratio 0.2
     --dev-pairs "$tmp/dev-pairs.tsv" --max-length 96 --batch-size 4 --max-steps 4 --save-every 2 --threads 1
     --quiet --seed 7)
check "${cpt[@]}" --out "$tmp/cpt-full"
"${cpt[@]}" --out "$tmp/cpt-killed" --exit-after-step 2 > "$tmp/log" 2>&1
rc=$?
[ $rc -eq 137 ] || { echo "cpt --exit-after-step 2: exit $rc, expected 137"; fail=1; }
[ -d "$tmp/cpt-killed/checkpoint" ] || { echo "cpt: no checkpoint after the kill"; fail=1; }
check "${cpt[@]}" --out "$tmp/cpt-killed" --resume
grep -q "resuming" "$tmp/log" || { echo "cpt --resume did not resume"; fail=1; }
a=$(final_loss "$tmp/cpt-full"); b=$(final_loss "$tmp/cpt-killed")
[ -n "$a" ] && [ "$a" = "$b" ] || { echo "cpt: resumed run's $b differs from the uninterrupted $a"; fail=1; }
grep -q '"stage": "cpt"' "$tmp/cpt-full/model/disranker.json" || { echo "cpt: no provenance"; fail=1; }
grep -q '"perplexity"' "$tmp/cpt-full/summary.json" || { echo "cpt: no dev perplexity in summary"; fail=1; }
grep -q '"target_tokens_per_second"' "$tmp/cpt-full/summary.json" || { echo "cpt: no throughput"; fail=1; }
[ -f "$tmp/cpt-full/config.toml" ] && [ -s "$tmp/cpt-full/metrics.jsonl" ] \
  || { echo "cpt: no config.toml or metrics.jsonl"; fail=1; }
# The resolved config repeats the run.
grep -q '^pairs' "$tmp/cpt-full/config.toml" || { echo "cpt: config.toml lacks pairs"; fail=1; }
# The trained teacher still loads and scores (the score head was initialised by init).
check "$bin" cpt --model "$tmp/cpt-full/model" --pairs "$tmp/dev-pairs.tsv" --no-pack --max-length 96 \
  --batch-size 4 --max-steps 1 --threads 1 --quiet --out "$tmp/cpt-again"

# ---- MLM of a tiny BERT student ----------------------------------------------------------------------------
check "$bin" train-tokenizer --kind wordpiece --vocab-size 600 --lowercase --docs "$dev/docs.tsv" \
  --out "$tmp/vocab.txt"
check "$bin" init --config "$root/configs/models/bert-tiny.json" --tokenizer "$tmp/vocab.txt" --mlm-head \
  --out "$tmp/student"
mlm=("$bin" mlm --model "$tmp/student" --text "$dev/docs.tsv" --text "$dev/queries.tsv" --max-length 64
     --batch-size 8 --max-steps 4 --save-every 2 --threads 1 --quiet --seed 3)
check "${mlm[@]}" --out "$tmp/mlm-full"
"${mlm[@]}" --out "$tmp/mlm-killed" --exit-after-step 2 > "$tmp/log" 2>&1
rc=$?
[ $rc -eq 137 ] || { echo "mlm --exit-after-step 2: exit $rc, expected 137"; fail=1; }
check "${mlm[@]}" --out "$tmp/mlm-killed" --resume
a=$(final_loss "$tmp/mlm-full"); b=$(final_loss "$tmp/mlm-killed")
[ -n "$a" ] && [ "$a" = "$b" ] || { echo "mlm: resumed run's $b differs from the uninterrupted $a"; fail=1; }
grep -q '"accuracy"' "$tmp/mlm-full/summary.json" || { echo "mlm: no held-out accuracy"; fail=1; }
grep -q 'every 100th' "$tmp/mlm-full/summary.json" || { echo "mlm: held-out source not stated"; fail=1; }
grep -q '"stage": "mlm"' "$tmp/mlm-full/model/disranker.json" || { echo "mlm: no provenance"; fail=1; }

# ---- Errors a user can act on ------------------------------------------------------------------------------
expect_error() {  # expect_error SUBSTRING command...
  local what="$1"; shift
  if "$@" > "$tmp/log" 2>&1; then echo "accepted: $*"; fail=1; return; fi
  grep -q -- "$what" "$tmp/log" || { echo "error of '$*' does not say '$what':"; cat "$tmp/log"; fail=1; }
}
: > "$tmp/empty.tsv"
expect_error "$tmp/empty.tsv" "$bin" cpt --model "$tmp/teacher" --pairs "$tmp/empty.tsv" --max-steps 1 \
  --quiet --out "$tmp/e1"
expect_error "BERT" "$bin" cpt --model "$tmp/student" --pairs "$tmp/pairs.tsv" --max-steps 1 --quiet \
  --out "$tmp/e2"
expect_error "decoder" "$bin" mlm --model "$tmp/teacher" --text "$dev/docs.tsv" --max-steps 1 --quiet \
  --out "$tmp/e3"
expect_error "$tmp/empty.tsv" "$bin" mlm --model "$tmp/student" --text "$tmp/empty.tsv" --max-steps 1 \
  --quiet --out "$tmp/e4"
check "$bin" init --config "$root/configs/models/bert-tiny.json" --tokenizer "$tmp/vocab.txt" \
  --out "$tmp/no-mlm"
expect_error "--mlm-head" "$bin" mlm --model "$tmp/no-mlm" --text "$dev/docs.tsv" --max-steps 1 --quiet \
  --out "$tmp/e5"
check "$bin" init --config "$root/configs/models/decoder-tiny.json" --tokenizer "$tmp/bpe.json" --no-lm-head \
  --out "$tmp/no-lm"
expect_error "LM head" "$bin" cpt --model "$tmp/no-lm" --pairs "$tmp/pairs.tsv" --max-steps 1 --quiet \
  --out "$tmp/e6"
for command in cpt mlm; do
  "$bin" $command --help > "$tmp/help" 2>&1 || { echo "$command --help failed"; fail=1; }
  grep -q -- "--resume" "$tmp/help" || { echo "$command --help lacks the run flags"; fail=1; }
done
[ $fail -eq 0 ] && echo "cpt and mlm: trained, resumed exactly, errors checked"
exit $fail
