#!/usr/bin/env bash
# The rank stages end to end on WikiQA, small: a tiny decoder teacher (BPE vocabulary trained here) and a tiny
# BERT student (the real bert-base-uncased vocabulary) are initialised; the teacher is rank fine-tuned (`sft`) on
# a subset of wikiqa-train with LoRA and epoch-end validation; it scores a subset of wikiqa-dev (`score`); the
# student is distilled on those scores (`distill`) with --dev. Then resume after a kill: a run that exits
# abruptly after step 2 (status 137) and is resumed ends with the final loss of an uninterrupted run.
set -u
bin="$1"
. "$(dirname "$0")/wikiqa_env.sh" jq
common=(--threads 1 --quiet)

# Subsets: the judgements of the first 40 training queries and of the first 20 dev queries (all candidates of
# each query are kept: a query's lines are contiguous in the qrels).
awk '!($1 in seen) { seen[$1]; n++ } n <= 40' "$train/qrels.txt" > "$tmp/train-qrels.txt"
mkdir -p "$tmp/dev"
awk '!($1 in seen) { seen[$1]; n++ } n <= 20' "$dev/qrels.txt" > "$tmp/dev/qrels.txt"
ln -s "$dev/queries.tsv" "$tmp/dev/queries.tsv"
ln -s "$dev/docs.tsv" "$tmp/dev/docs.tsv"

# --- models -------------------------------------------------------------------------------------------------
"$bin" train-tokenizer --kind bpe --vocab-size 512 --queries "$train/queries.tsv" --docs "$dev/docs.tsv" \
  --out "$tmp/bpe.json" > /dev/null 2> "$tmp/tok.err" || { cat "$tmp/tok.err"; echo "train-tokenizer failed"; exit 1; }
"$bin" init --config "$root/configs/models/decoder-tiny.json" --tokenizer "$tmp/bpe.json" --out "$tmp/teacher" \
  --max-length 96 > /dev/null || { echo "init teacher failed"; exit 1; }
"$bin" init --config "$root/configs/models/bert-tiny.json" --tokenizer "$vocab" --out "$tmp/student" \
  --max-length 96 > /dev/null || { echo "init student failed"; exit 1; }

# --- sft: the teacher with LoRA, validated on the dev subset ---------------------------------------------------
"$bin" sft --model "$tmp/teacher" --queries "$train/queries.tsv" --docs "$train/docs.tsv" \
  --qrels "$tmp/train-qrels.txt" --out "$tmp/sft" --max-steps 4 --group-size 4 --groups-per-batch 2 \
  --lora-r 4 --lora-targets q_proj,k_proj,v_proj,o_proj --dev "$tmp/dev" --dev-require-relevant \
  --learning-rate 1e-3 "${common[@]}" 2> "$tmp/sft.err" || { cat "$tmp/sft.err"; echo "sft failed"; exit 1; }
for f in model/config.json model/model.safetensors model/disranker.json summary.json config.toml metrics.jsonl; do
  [ -f "$tmp/sft/$f" ] || { echo "sft: $f missing"; fail=1; }
done
# The dropped queries are reported with counts, never silently.
grep -q "queries without a positive label dropped" "$tmp/sft.err" || { cat "$tmp/sft.err"; echo "sft: no group report"; fail=1; }
grep -q "query groups built from 40 queries" "$tmp/sft.err" || { echo "sft: group totals missing"; fail=1; }
jq -e '.steps == 4 and .groups.queries_in == 40 and .groups.groups_out + .groups.no_positive == 40
       and (.validation | has("ndcg_cut.10") and has("pnr") and has("recip_rank")) and .pairs_per_second > 0
       and .lora.r == 4' "$tmp/sft/summary.json" > /dev/null || { cat "$tmp/sft/summary.json"; echo "sft: bad summary"; fail=1; }
jq -e '.provenance.stage == "sft" and .provenance.loss.name == "softmax" and .provenance.steps == 4' \
  "$tmp/sft/model/disranker.json" > /dev/null || { echo "sft: bad provenance"; fail=1; }
# The merged model has no adapter tensors left: it is a plain decoder.
if grep -a -q "lora_" "$tmp/sft/model/model.safetensors"; then echo "sft: LoRA tensors in the saved model"; fail=1; fi

# --- score: the teacher grades the dev subset ----------------------------------------------------------------------
"$bin" score --model "$tmp/sft/model" --queries "$dev/queries.tsv" --docs "$dev/docs.tsv" --qrels "$tmp/dev/qrels.txt" \
  --out "$tmp/teacher.run" --tag teacher --threads 1 2> "$tmp/score.err" || { cat "$tmp/score.err"; echo "score failed"; exit 1; }
[ "$(wc -l < "$tmp/teacher.run")" -eq "$(wc -l < "$tmp/dev/qrels.txt")" ] || { echo "teacher run size"; fail=1; }

# --- distill: the student on the teacher's scores ------------------------------------------------------------------
distill() {
  "$bin" distill --model "$tmp/student" --teacher-run "$tmp/teacher.run" --queries "$dev/queries.tsv" \
    --docs "$dev/docs.tsv" --qrels "$tmp/dev/qrels.txt" --group-size 4 --groups-per-batch 4 "${common[@]}" "$@"
}
distill --out "$tmp/distill" --max-steps 4 --teacher-norm query --dev "$tmp/dev" --dev-require-relevant \
  2> "$tmp/distill.err" || { cat "$tmp/distill.err"; echo "distill failed"; exit 1; }
jq -e '.steps == 4 and .stage == "distill" and .teacher_norm.norm == "query" and .loss.name == "hybrid"
       and .loss.alpha == 0.5 and .groups.groups_out == 20 and (.validation | has("pnr"))' \
  "$tmp/distill/summary.json" > /dev/null || { cat "$tmp/distill/summary.json"; echo "distill: bad summary"; fail=1; }
jq -e '.provenance.stage == "distill" and .role == "student"' "$tmp/distill/model/disranker.json" > /dev/null \
  || { echo "distill: bad provenance"; fail=1; }
# pos-neg pairs without labels is an error that names the flag.
out=$("$bin" distill --model "$tmp/student" --teacher-run "$tmp/teacher.run" --queries "$dev/queries.tsv" \
  --docs "$dev/docs.tsv" --pairs pos-neg --out "$tmp/bad" "${common[@]}" 2>&1) && { echo "pos-neg without qrels accepted"; fail=1; }
case "$out" in *"--qrels"*) ;; *) echo "pos-neg error does not name --qrels: $out"; fail=1 ;; esac

# --- resume after a kill (distill and sft) -----------------------------------------------------------------------
distill --out "$tmp/whole" --max-steps 4 --save-every 1 2> /dev/null || { echo "uninterrupted distill failed"; fail=1; }
distill --out "$tmp/killed" --max-steps 4 --save-every 1 --exit-after-step 2 2> /dev/null
rc=$?
[ "$rc" -eq 137 ] || { echo "--exit-after-step 2: status $rc, expected 137"; fail=1; }
[ -f "$tmp/killed/summary.json" ] && { echo "a killed run wrote its summary"; fail=1; }
distill --out "$tmp/killed" --max-steps 4 --save-every 1 --resume 2> "$tmp/resume.err" \
  || { cat "$tmp/resume.err"; echo "resumed distill failed"; fail=1; }
grep -q "resuming from" "$tmp/resume.err" || { echo "distill --resume did not resume"; fail=1; }
a=$(jq .final_loss "$tmp/whole/summary.json"); b=$(jq .final_loss "$tmp/killed/summary.json")
[ "$a" = "$b" ] || { echo "distill: resumed final loss $b != uninterrupted $a"; fail=1; }
jq -e '.resumed_from_step == 2 and .steps == 4' "$tmp/killed/summary.json" > /dev/null || { echo "distill: resume summary"; fail=1; }

sft() {
  "$bin" sft --model "$tmp/student" --queries "$train/queries.tsv" --docs "$train/docs.tsv" \
    --qrels "$tmp/train-qrels.txt" --max-steps 4 --save-every 1 --group-size 4 --groups-per-batch 2 --loss ranknet \
    "${common[@]}" "$@"
}
sft --out "$tmp/sft-whole" 2> /dev/null || { echo "uninterrupted sft failed"; fail=1; }
sft --out "$tmp/sft-killed" --exit-after-step 2 2> /dev/null
rc=$?
[ "$rc" -eq 137 ] || { echo "sft --exit-after-step 2: status $rc, expected 137"; fail=1; }
sft --out "$tmp/sft-killed" --resume 2> /dev/null || { echo "resumed sft failed"; fail=1; }
a=$(jq .final_loss "$tmp/sft-whole/summary.json"); b=$(jq .final_loss "$tmp/sft-killed/summary.json")
[ "$a" = "$b" ] || { echo "sft: resumed final loss $b != uninterrupted $a"; fail=1; }

[ "$fail" -eq 0 ] && echo "rank stages: sft, score, distill and resume OK"
exit $fail
