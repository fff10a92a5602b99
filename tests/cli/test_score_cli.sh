#!/usr/bin/env bash
# `disranker init` + `disranker score` end to end on WikiQA dev: a freshly initialised bert-tiny (the real
# bert-base-uncased vocabulary) scores every judged pair, `disranker eval` reads the run, and the two halves of
# a --shard 0/2, 1/2 split concatenate to the unsharded run.
set -u
bin="$1"
root="$(cd "$(dirname "$0")/../.." && pwd)"
data="${DISRANKER_DATA:-$root/../shared/data}"
set_dir="$data/wikiqa-dev"
vocab="$data/weights/vocab/bert-base-uncased-vocab.txt"
[ -f "$set_dir/queries.tsv" ] && [ -f "$vocab" ] || { echo "shared data not found at $data: skipped"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS=1
fail=0

"$bin" init --config "$root/configs/models/bert-tiny.json" --tokenizer "$vocab" --out "$tmp/model" \
  --max-length 128 > "$tmp/init.txt" || { echo "init failed"; exit 1; }
grep -q "parameters" "$tmp/init.txt" || { echo "init does not print the parameter count"; fail=1; }
for f in config.json model.safetensors vocab.txt disranker.json; do
  [ -f "$tmp/model/$f" ] || { echo "init: $f missing"; fail=1; }
done

score() { "$bin" score --model "$tmp/model" --queries "$set_dir/queries.tsv" --docs "$set_dir/docs.tsv" \
  --qrels "$set_dir/qrels.txt" --threads 1 --batch-size 32 "$@"; }
score --out "$tmp/full.txt" --tag tiny 2> "$tmp/score.err" || { cat "$tmp/score.err"; echo "score failed"; exit 1; }
grep -q "pairs/s" "$tmp/score.err" || { echo "score does not report pairs/s"; fail=1; }
# Every judged pair is scored once.
[ "$(wc -l < "$tmp/full.txt")" -eq "$(wc -l < "$set_dir/qrels.txt")" ] || { echo "run and qrels sizes differ"; fail=1; }
awk '$6 != "tiny" || $2 != "Q0" { bad = 1 } END { exit bad }' "$tmp/full.txt" || { echo "bad run columns"; fail=1; }

"$bin" eval --qrels "$set_dir/qrels.txt" --run "$tmp/full.txt" > "$tmp/eval.txt" || { echo "eval failed"; fail=1; }
grep -q "ndcg_cut.10" "$tmp/eval.txt" || { echo "eval output has no ndcg_cut.10:"; cat "$tmp/eval.txt"; fail=1; }

# Shards: disjoint by query, and their concatenation is the full run. Scores may differ in the last float bits
# (different batches), so they are compared to 1e-5; everything else must be identical.
score --out "$tmp/shard0.txt" --tag tiny --shard 0/2 2>/dev/null || { echo "shard 0/2 failed"; fail=1; }
score --out "$tmp/shard1.txt" --tag tiny --shard 1/2 2>/dev/null || { echo "shard 1/2 failed"; fail=1; }
common=$(comm -12 <(cut -d' ' -f1 "$tmp/shard0.txt" | sort -u) <(cut -d' ' -f1 "$tmp/shard1.txt" | sort -u) | wc -l)
[ "$common" -eq 0 ] || { echo "$common queries are in both shards"; fail=1; }
cat "$tmp/shard0.txt" "$tmp/shard1.txt" | sort -k1,1 -k3,3 > "$tmp/merged.sorted"
sort -k1,1 -k3,3 "$tmp/full.txt" > "$tmp/full.sorted"
if ! paste -d' ' "$tmp/merged.sorted" "$tmp/full.sorted" | awk '
    NF != 12 || $1 != $7 || $3 != $9 || $4 != $10 || $6 != $12 { print "differs: " $0; bad = 1; exit }
    { d = $5 - $11; if (d < 0) d = -d; if (d > 1e-5) { print "score differs: " $0; bad = 1; exit } }
    END { exit bad }'; then
  echo "sharded run differs from the full run"; fail=1
fi
[ "$(wc -l < "$tmp/merged.sorted")" -eq "$(wc -l < "$tmp/full.sorted")" ] || { echo "shard sizes do not add up"; fail=1; }

# Engines: auto picks the fast engine for a BERT student; libtorch scores the same pairs to 1e-4.
grep -q "fast engine" "$tmp/score.err" || { echo "auto did not pick the fast engine:"; cat "$tmp/score.err"; fail=1; }
score --out "$tmp/torch.txt" --tag tiny --engine torch 2> "$tmp/torch.err" || { cat "$tmp/torch.err"; fail=1; }
grep -q "libtorch" "$tmp/torch.err" || { echo "--engine torch does not say libtorch"; fail=1; }
join <(awk '{ print $1 "/" $3, $5 }' "$tmp/full.txt" | sort) <(awk '{ print $1 "/" $3, $5 }' "$tmp/torch.txt" | sort) |
  awk -v n="$(wc -l < "$tmp/full.txt")" '{ d = $2 - $3; if (d < 0) d = -d; if (d > 1e-4) { print "engines differ: " $0; bad = 1 } m++ }
    END { if (m != n) { print "joined " m " of " n; bad = 1 } exit bad }' || fail=1
out=$(score --out "$tmp/x.txt" --engine fast --device cuda 2>&1) && { echo "--engine fast --device cuda accepted"; fail=1; }
case "$out" in *"CPU only"* | *"CUDA is not available"*) ;; *) echo "bad --engine fast --device cuda error: $out"; fail=1 ;; esac

# Errors: a bad --shard names the option; a candidate the docs lack names the candidates file.
out=$(score --out "$tmp/x.txt" --shard 2/2 2>&1) && { echo "--shard 2/2 accepted"; fail=1; }
case "$out" in *"--shard"*) ;; *) echo "bad --shard error: $out"; fail=1 ;; esac
printf '%s Q0 no-such-doc 1 1 x\n' "$(head -n1 "$set_dir/queries.tsv" | cut -f1)" > "$tmp/bad.run"
out=$("$bin" score --model "$tmp/model" --queries "$set_dir/queries.tsv" --docs "$set_dir/docs.tsv" \
  --run "$tmp/bad.run" --out "$tmp/x.txt" --threads 1 2>&1) && { echo "unknown docid accepted"; fail=1; }
case "$out" in *"$tmp/bad.run"*"no-such-doc"*) ;; *) echo "unknown docid error: $out"; fail=1 ;; esac
[ -e "$tmp/x.txt" ] && { echo "a failed score left an output file"; fail=1; }
exit $fail
