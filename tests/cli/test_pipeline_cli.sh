#!/usr/bin/env bash
# `disranker pipeline` end to end on a miniature of the shared data (a few WikiQA and QBQTC questions, tiny
# models, a few steps per stage): every step runs, the report (with its simulated online table) and the
# deployable student are written, a rerun skips everything, and a changed distillation setting reruns only the
# steps that depend on it.
set -u
bin="$1"
root="$(cd "$(dirname "$0")/../.." && pwd)"
data="${DISRANKER_DATA:-$root/../shared/data}"
for s in wikiqa-train wikiqa-dev qbqtc-train; do
  [ -f "$data/$s/qrels.txt" ] || { echo "shared data not found at $data: skipped"; exit 77; }
done
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS=1
fail=0

# A miniature data directory: the first N questions of each set with their documents.
mini() {  # mini SET N
  local from="$data/$1" to="$tmp/data/$1"
  mkdir -p "$to"
  head -n "$2" "$from/queries.tsv" > "$to/queries.tsv"
  awk 'NR == FNR { keep[$1] = 1; next } keep[$1]' "$to/queries.tsv" "$from/qrels.txt" > "$to/qrels.txt"
  awk 'NR == FNR { keep[$3] = 1; next } keep[$1]' "$to/qrels.txt" "$from/docs.tsv" > "$to/docs.tsv"
}
mini wikiqa-train 40
mini wikiqa-dev 30
mini qbqtc-train 10

cat > "$tmp/mini.toml" <<'EOF'
[pipeline]
train-sets = ["wikiqa-train", "qbqtc-train"]
dev-sets = ["wikiqa-dev"]
require-relevant = ["wikiqa-dev"]
cpt-qrels-sets = ["wikiqa-train"]
click-sessions = 200
teacher-config = "configs/models/decoder-tiny.json"
teacher-vocab-size = 400
teacher-max-length = 64
student-config = "configs/models/bert-tiny.json"
student-vocab-size = 400
student-max-length = 64
alphas = [0.0, 0.5]
alpha = 0.5
threads = 1
[pipeline.online]
users = 2000
days = 7
[teacher-cpt]
max-steps = 2
max-length = 64
[teacher-sft]
max-steps = 2
[student-mlm]
max-steps = 2
max-length = 32
[student-sft]
max-steps = 2
[student-distill]
max-steps = 2
EOF

cd "$root"
run() { DISRANKER_DATA="$tmp/data" "$bin" --config "$tmp/mini.toml" pipeline --out "$tmp/out" "$@"; }

run --dry-run > "$tmp/plan.txt" || { echo "dry run failed"; exit 1; }
grep -q "teacher-cpt" "$tmp/plan.txt" && grep -q "disranker sft" "$tmp/plan.txt" \
  || { echo "the dry run does not list the steps and commands"; cat "$tmp/plan.txt"; fail=1; }
[ ! -d "$tmp/out/train" ] || [ -z "$(ls "$tmp/out/train")" ] || { echo "the dry run trained something"; fail=1; }

run > "$tmp/first.out" 2> "$tmp/first.err" || { tail -40 "$tmp/first.err"; echo "pipeline failed"; exit 1; }
for f in report.json report.md report.html student/model.safetensors student/config.json student/disranker.json \
  runs/wikiqa-dev.bm25.txt runs/wikiqa-dev.teacher.txt runs/wikiqa-dev.student-distilled.txt \
  train/teacher-nocpt-sft/model/config.json train/teacher-mean-sft/model/disranker.json; do
  [ -s "$tmp/out/$f" ] || { echo "pipeline: $f missing"; fail=1; }
done
grep -q '"pooling": "mean"' "$tmp/out/train/teacher-mean-sft/model/disranker.json" \
  || { echo "the pooling ablation does not use mean pooling"; fail=1; }
# The summary table has a row per system, and the teacher's row matches `disranker eval` on its run.
for system in BM25 "teacher " "teacher without CPT" "student (labels only)" "student (distilled)"; do
  grep -q "$system" "$tmp/first.out" || { echo "summary: no row for '$system'"; fail=1; }
done
expected=$("$bin" eval --qrels "$tmp/data/wikiqa-dev/qrels.txt" --require-relevant -m ndcg_cut.10 \
  --run "$tmp/out/runs/wikiqa-dev.teacher.txt" | awk '$1 == "ndcg_cut.10" { print $2 }')
actual=$(awk '$1 == "teacher" && NF == 6 { print $3 }' "$tmp/first.out" | head -1)
[ -n "$expected" ] && [ "$expected" = "$actual" ] \
  || { echo "teacher NDCG@10 in the summary ($actual) differs from eval ($expected)"; fail=1; }

# The simulated online experiment: a table per set in report.md and in the printed summary, a row per student.
grep -q "^### Online (simulated): wikiqa-dev$" "$tmp/out/report.md" \
  || { echo "report.md has no online table"; fail=1; }
grep -q "^| student (distilled) | [0-9.]* → [0-9.]* | " "$tmp/out/report.md" \
  || { echo "report.md: no online row for the distilled student"; fail=1; }
grep -q "^Online (simulated): wikiqa-dev$" "$tmp/first.out" || { echo "summary: no online table"; fail=1; }
grep -q "2000 users over 7 days" "$tmp/out/report.md" || { echo "report.md: [pipeline.online] was not applied"; fail=1; }

# A rerun does nothing; a new distillation setting reruns the students that distil and what reads them.
run > /dev/null 2> "$tmp/second.err" || { echo "rerun failed"; exit 1; }
if grep -q "\$ disranker" "$tmp/second.err"; then echo "the rerun ran a command:"; grep "\$ disranker" "$tmp/second.err"; fail=1; fi
sed -i 's/^\[student-distill\]/[student-distill]\nlearning-rate = 0.001/' "$tmp/mini.toml"
run > /dev/null 2> "$tmp/third.err" || { echo "third run failed"; exit 1; }
ran=$(grep -o '^\[[0-9]*/[0-9]*\] [a-z0-9.-]*' "$tmp/third.err" | awk '{ print $2 }' | sort | tr '\n' ' ')
skipped=$(grep -c "(done, skipped)" "$tmp/third.err")
echo "$ran" | grep -q "student-distill-a0.5" || { echo "the changed distillation did not rerun"; fail=1; }
grep -q "teacher-sft.*skipped" "$tmp/third.err" || { echo "the teacher was retrained"; fail=1; }
grep -q "student-labels.*skipped" "$tmp/third.err" || { echo "the labels-only student was retrained"; fail=1; }
grep -q "score-wikiqa-dev-student-distilled .*" "$tmp/third.err" && ! grep -q "score-wikiqa-dev-student-distilled:.*skipped" "$tmp/third.err" \
  || { echo "the distilled student's scores were not recomputed"; fail=1; }
[ "$skipped" -gt 10 ] || { echo "only $skipped steps skipped after a distillation change"; fail=1; }

# --ranks 2: another distillation change reruns those steps as 2-rank jobs on this machine (rank 1 logging to
# its own file), and the pipeline still finishes with its report.
sed -i 's/^learning-rate = 0.001/learning-rate = 0.002/' "$tmp/mini.toml"
run --ranks 2 > /dev/null 2> "$tmp/ranks.err" || { tail -30 "$tmp/ranks.err"; echo "the 2-rank run failed"; exit 1; }
grep -q "as 2 ranks on this machine" "$tmp/ranks.err" || { echo "--ranks 2 ran no step as ranks"; fail=1; }
for step in student-distill-a0.5 score-wikiqa-dev-student-distilled; do
  grep -q "distributed: rank 1 of 2" "$tmp/out/logs/$step.rank1.log" 2> /dev/null \
    || { echo "$step: rank 1 did not join a 2-rank job"; fail=1; }
done
[ -s "$tmp/out/runs/wikiqa-dev.student-distilled.txt" ] && [ -s "$tmp/out/report.md" ] \
  || { echo "the 2-rank run left no run or report"; fail=1; }
# The 2-rank scoring step wrote what one process writes with the same threads, byte for byte: its command
# (the last "$ " line of its log) again, alone, into another file.
run_file="$tmp/out/runs/wikiqa-dev.student-distilled.txt"
command=$(grep '^\$ ' "$tmp/out/logs/score-wikiqa-dev-student-distilled.log" | tail -1 | cut -c3-)
eval "${command/"$run_file"/"$tmp/one-process.txt"}" > /dev/null 2>&1 \
  || { echo "the scoring step's command failed alone: $command"; fail=1; }
cmp -s "$run_file" "$tmp/one-process.txt" || { echo "2 ranks scored otherwise than one process"; fail=1; }

[ "$fail" -eq 0 ] && echo "pipeline CLI: all checks passed"
exit "$fail"
