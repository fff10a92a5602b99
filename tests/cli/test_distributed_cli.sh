#!/usr/bin/env bash
# Data parallelism on loopback with 2 local ranks (c10d Gloo; docs/distributed.md). A bert-tiny student (the
# real bert-base-uncased vocabulary) is rank fine-tuned on WikiQA train with 4 micro-batches per step:
#   - 2 ranks (2 micro-batches each, gradients all-reduced) follow the single-process loss curve step by step
#     (tolerance 1e-4 relative: the ranks sum the gradient in another order, nothing else differs);
#   - a 2-rank run killed after step 4 and resumed by 1 process ends where the uninterrupted run ends;
#   - sharded scoring (2 ranks, started by hand and by Open MPI's mpirun) writes the single-process run byte
#     for byte, and an epoch-end validation shared by the ranks gives the single-process metrics;
#   - a bad launch environment is an error that names the variable, and a rank alone times out with a
#     message instead of waiting forever.
set -u
bin="$1"
. "$(dirname "$0")/wikiqa_env.sh" jq
unset RANK WORLD_SIZE LOCAL_RANK LOCAL_WORLD_SIZE MASTER_ADDR OMPI_COMM_WORLD_SIZE OMPI_COMM_WORLD_RANK
export DISRANKER_DIST_TIMEOUT=120
port=$((20000 + RANDOM % 20000))

# Runs "$@" as 2 ranks on loopback (a fresh port each time); fails if either rank fails.
two_ranks() {
  port=$((port + 1))
  local status=0
  MASTER_PORT=$port WORLD_SIZE=2 RANK=1 "$bin" "$@" > "$tmp/rank1.out" 2> "$tmp/rank1.err" &
  local other=$!
  MASTER_PORT=$port WORLD_SIZE=2 RANK=0 "$bin" "$@" > "$tmp/rank0.out" 2> "$tmp/rank0.err" || status=$?
  local other_status=0
  wait $other || other_status=$?
  [ $status -ne 0 ] || status=$other_status
  return $status
}

# "step loss grad_norm" of each logged step of a run directory.
losses() { jq -r 'select(.loss != null) | "\(.step) \(.loss) \(.grad_norm)"' "$1/metrics.jsonl"; }
# same_curve A B [all]: the same logged steps, losses (and with `all` gradient norms) within 1e-4 relative.
same_curve() {
  paste <(losses "$1") <(losses "$2") | awk -v all="${3:-}" '
    function rel(a, b) { d = a - b; if (d < 0) d = -d; m = (a < 0 ? -a : a); return d / (m > 1 ? m : 1) }
    NF != 6 || $1 != $4 { print "step " $1 " vs step " $4; bad = 1; next }
    rel($2, $5) > 1e-4 || (all == "all" && rel($3, $6) > 1e-4) {
      print "step " $1 ": loss " $2 " vs " $5 ", grad norm " $3 " vs " $6; bad = 1 }
    END { exit bad || NR == 0 }'
}

"$bin" init --config "$root/configs/models/bert-tiny.json" --tokenizer "$vocab" --out "$tmp/student" \
  --max-length 64 > /dev/null || { echo "init failed"; exit 1; }
sft() { echo sft --model "$tmp/student" --queries "$train/queries.tsv" --docs "$train/docs.tsv" \
  --qrels "$train/qrels.txt" --max-steps 8 --grad-accumulation 4 --lr 1e-3 --log-every 1 --threads 1 \
  --seed 7 --quiet; }

# 1. The 2-rank loss curve is the single-process one.
"$bin" $(sft) --out "$tmp/one" --save-every 0 2> "$tmp/one.err" || { cat "$tmp/one.err"; echo "sft failed"; exit 1; }
two_ranks $(sft) --out "$tmp/two" --save-every 0 ||
  { cat "$tmp/rank0.err" "$tmp/rank1.err"; echo "2-rank sft failed"; exit 1; }
grep -q "data parallel over 2 ranks" "$tmp/rank0.err" || { echo "rank 0 does not log the data parallelism"; fail=1; }
[ -f "$tmp/two/model/model.safetensors" ] && [ -f "$tmp/two/summary.json" ] || { echo "2-rank sft wrote no model"; fail=1; }
[ "$(losses "$tmp/one" | wc -l)" -eq 8 ] || { echo "the single-process run logged $(losses "$tmp/one" | wc -l) steps, not 8"; fail=1; }
same_curve "$tmp/one" "$tmp/two" all || { echo "the 2-rank loss curve differs from the single-process one"; fail=1; }
# Every rank's micro-batches counted: the logged throughput is the job's, and the units equal.
[ "$(jq -s '[.[] | select(.loss != null)] | length' "$tmp/two/metrics.jsonl")" -eq 8 ] || { echo "2-rank run did not log 8 steps"; fail=1; }

# The same for masked-LM pre-training (its epoch-end validation, a held-out loss, runs on every rank).
"$bin" init --config "$root/configs/models/bert-tiny.json" --tokenizer "$vocab" --out "$tmp/mlm-student" \
  --max-length 64 --mlm-head > /dev/null || { echo "init --mlm-head failed"; exit 1; }
mlm() { echo mlm --model "$tmp/mlm-student" --text "$dev/docs.tsv" --max-length 64 --batch-size 16 --max-steps 4 \
  --grad-accumulation 2 --lr 1e-3 --log-every 1 --threads 1 --seed 3 --quiet --save-every 0; }
"$bin" $(mlm) --out "$tmp/mlm.one" 2> "$tmp/mlm.err" || { cat "$tmp/mlm.err"; echo "mlm failed"; fail=1; }
two_ranks $(mlm) --out "$tmp/mlm.two" || { cat "$tmp/rank0.err"; echo "2-rank mlm failed"; fail=1; }
same_curve "$tmp/mlm.one" "$tmp/mlm.two" ||
  { echo "the 2-rank mlm loss curve differs from the single-process one"; fail=1; }

# 2. Killed with 2 ranks after step 4, resumed by one process: the end equals the uninterrupted run's.
two_ranks $(sft) --out "$tmp/killed" --save-every 2 --exit-after-step 4
status=$?
[ "$status" -eq 137 ] || { echo "--exit-after-step 4 with 2 ranks: status $status, expected 137"; fail=1; }
"$bin" $(sft) --out "$tmp/killed" --save-every 2 --resume 2> "$tmp/resume.err" ||
  { cat "$tmp/resume.err"; echo "resume with 1 process failed"; fail=1; }
grep -q "resuming from .* at step 4" "$tmp/resume.err" || { echo "the resume did not start at step 4"; fail=1; }
same_curve "$tmp/one" "$tmp/killed" ||
  { echo "2 ranks killed + 1 process resumed differs from the uninterrupted run"; fail=1; }

# 3. Sharded scoring: the merged run is the single-process run, byte for byte.
awk '{ print $1, "Q0", $3, NR, 0, "judged" }' "$dev/qrels.txt" > "$tmp/candidates.txt"
score() { echo score --model "$tmp/one/model" --queries "$dev/queries.tsv" --docs "$dev/docs.tsv" \
  --run "$tmp/candidates.txt" --threads 1 --batch-size 32; }
"$bin" $(score) --out "$tmp/score.one.txt" 2> "$tmp/score.err" || { cat "$tmp/score.err"; echo "score failed"; exit 1; }
two_ranks $(score) --out "$tmp/score.two.txt" || { cat "$tmp/rank0.err" "$tmp/rank1.err"; echo "2-rank score failed"; fail=1; }
[ "$(wc -l < "$tmp/score.one.txt")" -eq 2733 ] || { echo "the single-process run lacks pairs"; fail=1; }
cmp "$tmp/score.one.txt" "$tmp/score.two.txt" || { echo "2-rank scoring differs from 1 process"; fail=1; }
if command -v mpirun > /dev/null; then
  port=$((port + 1))
  mpirun --allow-run-as-root --oversubscribe -np 2 -x MASTER_PORT=$port -x OMP_NUM_THREADS -x DISRANKER_DIST_TIMEOUT \
    "$bin" $(score) --out "$tmp/score.mpi.txt" > "$tmp/mpi.out" 2>&1 || { cat "$tmp/mpi.out"; echo "mpirun score failed"; fail=1; }
  grep -q "Open MPI (mpirun)" "$tmp/mpi.out" || { echo "mpirun's ranks were not recognised"; cat "$tmp/mpi.out"; fail=1; }
  cmp "$tmp/score.one.txt" "$tmp/score.mpi.txt" || { echo "mpirun scoring differs from 1 process"; fail=1; }
else
  echo "mpirun not found (Debian: openmpi-bin): the mpirun launch is not checked"; fail=1
fi

# Validation shared by 2 ranks gives the single-process metrics.
val() { echo sft --model "$tmp/student" --queries "$train/queries.tsv" --docs "$train/docs.tsv" \
  --qrels "$train/qrels.txt" --max-steps 2 --grad-accumulation 2 --threads 1 --quiet --save-every 0 \
  --dev "$dev" --dev-require-relevant; }
"$bin" $(val) --out "$tmp/val.one" 2> /dev/null || { echo "sft with --dev failed"; fail=1; }
two_ranks $(val) --out "$tmp/val.two" || { cat "$tmp/rank0.err"; echo "2-rank sft with --dev failed"; fail=1; }
a=$(jq -c '.epoch_metrics' "$tmp/val.one/summary.json"); b=$(jq -c '.epoch_metrics' "$tmp/val.two/summary.json")
[ -n "$a" ] && [ "$a" != "null" ] && [ "$a" != "[]" ] || { echo "no validation metrics in the summary"; fail=1; }
jq -n --argjson a "$a" --argjson b "$b" '[$a, $b] | transpose | all(.[0] as $x | .[1] as $y |
  ($x | keys) == ($y | keys) and all($x | keys[]; . as $k | (($x[$k] - $y[$k]) | fabs) < 1e-4))' > /dev/null ||
  { echo "2-rank validation differs: $a vs $b"; fail=1; }

# 4. Launch errors name the variable; a rank whose peers never come fails after the timeout.
out=$(WORLD_SIZE=2 RANK=2 "$bin" $(score) --out "$tmp/x.txt" 2>&1) && { echo "RANK=2 of 2 was accepted"; fail=1; }
case "$out" in *RANK*) ;; *) echo "a bad RANK is not named: $out"; fail=1 ;; esac
out=$(WORLD_SIZE=2 "$bin" $(score) --out "$tmp/x.txt" 2>&1) && { echo "WORLD_SIZE without RANK was accepted"; fail=1; }
case "$out" in *RANK*) ;; *) echo "a missing RANK is not named: $out"; fail=1 ;; esac
out=$(WORLD_SIZE=2 RANK=0 MASTER_PORT=$((port + 1)) DISRANKER_DIST_TIMEOUT=2 timeout 60 "$bin" $(score) --out "$tmp/x.txt" 2>&1)
status=$?
[ "$status" -ne 0 ] && [ "$status" -ne 124 ] || { echo "a rank alone: status $status (expected a prompt failure)"; fail=1; }
case "$out" in *"could not join"*) ;; *) echo "a rank alone does not say it could not join: $out"; fail=1 ;; esac
[ -f "$tmp/x.txt" ] && { echo "a failed launch wrote a run"; fail=1; }

# The pipeline is one driver process: started as a rank it refuses, pointing at what to launch instead.
out=$(WORLD_SIZE=2 RANK=0 "$bin" pipeline --config "$root/configs/quickstart.toml" --out "$tmp/pipeline" 2>&1) &&
  { echo "the pipeline ran as a rank"; fail=1; }
case "$out" in *"run the pipeline as one process"*) ;; *) echo "the pipeline's refusal is unclear: $out"; fail=1 ;; esac
[ -e "$tmp/pipeline" ] && { echo "the refused pipeline created its output directory"; fail=1; }

# A rank that dies makes the other fail at its next collective, saying so, instead of waiting for the timeout.
port=$((port + 1))
long_sft=$(sft | sed 's/--max-steps 8/--max-steps 100000/')
MASTER_PORT=$port WORLD_SIZE=2 RANK=1 "$bin" $long_sft --out "$tmp/dies" --save-every 0 2> /dev/null &
victim=$!
MASTER_PORT=$port WORLD_SIZE=2 RANK=0 "$bin" $long_sft --out "$tmp/dies" --save-every 0 2> "$tmp/dies.err" &
survivor=$!
for _ in $(seq 600); do [ -s "$tmp/dies/metrics.jsonl" ] && break; sleep 0.1; done
kill -9 $victim; wait $victim 2> /dev/null
timeout 60 tail --pid=$survivor -f /dev/null
if kill -0 $survivor 2> /dev/null; then
  echo "rank 0 still runs 60 s after rank 1 died"; kill -9 $survivor; fail=1
else
  wait $survivor && { echo "rank 0 succeeded although rank 1 died"; fail=1; }
  grep -q "did another rank exit" "$tmp/dies.err" || { echo "rank 0's error does not say a rank exited:"; tail -2 "$tmp/dies.err"; fail=1; }
fi

exit $fail
