# Sourced by the CLI tests that train or run models on WikiQA: the shared data's paths (train, dev, the
# bert-base-uncased vocabulary), a skip (exit 77) when the data or a tool the test names is missing, a temporary
# directory removed on exit, one model thread, and fail=0.
# Usage: . "$(dirname "$0")/wikiqa_env.sh" [TOOL...]
root="$(cd "$(dirname "$0")/../.." && pwd)"
data="${DISRANKER_DATA:-$root/../shared/data}"
train="$data/wikiqa-train"
dev="$data/wikiqa-dev"
vocab="$data/weights/vocab/bert-base-uncased-vocab.txt"
[ -f "$train/qrels.txt" ] && [ -f "$dev/qrels.txt" ] && [ -f "$vocab" ] || {
  echo "shared data not found at $data: skipped"; exit 77; }
for tool in "$@"; do
  command -v "$tool" > /dev/null || { echo "$tool not found: skipped"; exit 77; }
done
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS=1
fail=0
