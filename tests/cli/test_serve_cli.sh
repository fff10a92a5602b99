#!/usr/bin/env bash
# `disranker serve` end to end: a fresh bert-tiny model directory is served on a loopback port; /health and
# /metrics answer; /rerank returns every candidate of a WikiQA question with the same scores as the offline
# `disranker score` of the same pairs; errors are JSON with their status; SIGTERM stops the server cleanly; an
# incomplete model directory fails at start-up with a clear message.
set -u
bin="$1"
root="$(cd "$(dirname "$0")/../.." && pwd)"
data="${DISRANKER_DATA:-$root/../shared/data}"
set_dir="$data/wikiqa-dev"
vocab="$data/weights/vocab/bert-base-uncased-vocab.txt"
[ -f "$set_dir/queries.tsv" ] && [ -f "$vocab" ] || { echo "shared data not found at $data: skipped"; exit 77; }
command -v curl >/dev/null && command -v jq >/dev/null || { echo "curl and jq are needed (scripts/install-deps.sh)"; exit 1; }
tmp=$(mktemp -d)
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS=1
fail=0

"$bin" init --config "$root/configs/models/bert-tiny.json" --tokenizer "$vocab" --out "$tmp/model" \
  --max-length 128 > /dev/null || { echo "init failed"; exit 1; }

# One question and its candidate sentences, as a request and as files for `disranker score`.
qid=$(head -1 "$set_dir/queries.tsv" | cut -f1)
awk -F'\t' -v q="$qid" '$1 == q' "$set_dir/queries.tsv" > "$tmp/queries.tsv"
awk -v q="$qid" '$1 == q' "$set_dir/qrels.txt" > "$tmp/qrels.txt"
awk 'NR == FNR { keep[$3] = 1; next } keep[$1]' "$tmp/qrels.txt" FS='\t' "$set_dir/docs.tsv" > "$tmp/docs.tsv"
jq -Rn --arg q "$(cut -f2 "$tmp/queries.tsv")" \
  '{query: $q, documents: [inputs | split("\t") | {id: .[0], title: .[1], text: .[2]}]}' < "$tmp/docs.tsv" \
  > "$tmp/request.json"
"$bin" score --model "$tmp/model" --queries "$tmp/queries.tsv" --docs "$tmp/docs.tsv" --qrels "$tmp/qrels.txt" \
  --threads 1 --out "$tmp/offline.txt" 2> /dev/null || { echo "offline score failed"; exit 1; }

port=$((20000 + $$ % 20000))
# --threads 2: the fast engine starts an OpenMP team, whose threads must not die of the SIGTERM below.
"$bin" serve --model "$tmp/model" --port "$port" --threads 2 2> "$tmp/serve.err" &
server=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" > "$tmp/health.json" 2>/dev/null && break; sleep 0.1; done
jq -e '.status == "ok"' "$tmp/health.json" > /dev/null || { echo "/health did not answer"; cat "$tmp/serve.err"; exit 1; }

curl -s -X POST "http://127.0.0.1:$port/rerank" -d @"$tmp/request.json" > "$tmp/response.json"
n=$(wc -l < "$tmp/docs.tsv")
[ "$(jq '.results | length' "$tmp/response.json")" -eq "$n" ] || { echo "not every candidate was scored"; fail=1; }
# Parity with offline scoring: the same score for every document (float32 model, printed as double).
jq -r '.results[] | "\(.id) \(.relevance_score)"' "$tmp/response.json" | sort > "$tmp/served.txt"
awk '{ print $3, $5 }' "$tmp/offline.txt" | sort > "$tmp/offline-scores.txt"
join "$tmp/served.txt" "$tmp/offline-scores.txt" | awk -v n="$n" '
  { d = $2 - $3; if (d < 0) d = -d; if (d > 1e-5) { print "score differs for " $1 ": " $2 " vs " $3; bad = 1 } m++ }
  END { if (m != n) { print "joined " m " of " n " documents"; bad = 1 } exit bad }' || fail=1
# Sorted by score, index into the request order.
jq -e '[.results[].relevance_score] | . == (sort | reverse)' "$tmp/response.json" > /dev/null \
  || { echo "results are not sorted by score"; fail=1; }
first_index=$(jq '.results[0].index' "$tmp/response.json")
first_id=$(jq -r '.results[0].id' "$tmp/response.json")
[ "$(jq -r ".documents[$first_index].id" "$tmp/request.json")" = "$first_id" ] || { echo "index is not into the request"; fail=1; }

# max_tokens_per_doc: 1 keeps one title token of every document (WikiQA documents all have a title) and the
# whole query: each pair is [CLS] query [SEP] t1 [SEP], so n documents use n times the tokens of one.
cap1() { jq "$1 | .max_tokens_per_doc = 1" "$tmp/request.json" | curl -s -X POST "http://127.0.0.1:$port/rerank" -d @- | jq '.usage.tokens'; }
one=$(cap1 '.documents |= .[:1]')
all=$(cap1 '.')
[ "$all" -eq $((n * one)) ] && [ "$one" -gt 3 ] || { echo "max_tokens_per_doc=1: $all tokens for $n documents, $one for one"; fail=1; }

status() { curl -s -o "$tmp/error.json" -w '%{http_code}' -X POST "http://127.0.0.1:$port/rerank" "$@"; }
[ "$(status -d '{"query": 1, "documents": ["a"]}')" = 400 ] && jq -e '.error.message | test("query")' "$tmp/error.json" > /dev/null \
  || { echo "a wrong type is not a 400 naming the field"; fail=1; }
[ "$(status -d 'not json')" = 400 ] || { echo "malformed JSON is not a 400"; fail=1; }
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/nowhere")" = 404 ] || { echo "no 404"; fail=1; }
curl -s "http://127.0.0.1:$port/metrics" | grep -q '^disranker_requests_total' || { echo "/metrics lacks the request counter"; fail=1; }

kill -TERM "$server"
wait "$server"; code=$?
server=""
[ "$code" -eq 0 ] || { echo "serve exited with $code after SIGTERM"; cat "$tmp/serve.err"; fail=1; }

# --precision int8: the served scores equal offline int8 scoring's (quantization is per token, so batching
# does not change them), and differ from fp32's; int8 without the fast engine is refused, naming the flag.
"$bin" score --model "$tmp/model" --queries "$tmp/queries.tsv" --docs "$tmp/docs.tsv" --qrels "$tmp/qrels.txt" \
  --threads 1 --precision int8 --out "$tmp/offline-int8.txt" 2> /dev/null || { echo "offline int8 score failed"; fail=1; }
"$bin" serve --model "$tmp/model" --port "$port" --threads 1 --precision int8 2> "$tmp/serve-int8.err" &
server=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" > /dev/null 2>&1 && break; sleep 0.1; done
curl -s -X POST "http://127.0.0.1:$port/rerank" -d @"$tmp/request.json" |
  jq -r '.results[] | "\(.id) \(.relevance_score)"' | sort > "$tmp/served-int8.txt"
kill -TERM "$server"; wait "$server"; server=""
join "$tmp/served-int8.txt" <(awk '{ print $3, $5 }' "$tmp/offline-int8.txt" | sort) | awk -v n="$n" '
  { d = $2 - $3; if (d < 0) d = -d; if (d > 1e-5) { print "int8 score differs for " $1 ": " $2 " vs " $3; bad = 1 } m++ }
  END { if (m != n) { print "int8: joined " m " of " n " documents"; bad = 1 } exit bad }' || fail=1
cmp -s "$tmp/served-int8.txt" "$tmp/served.txt" && { echo "int8 serves the fp32 scores"; fail=1; }
out=$("$bin" serve --model "$tmp/model" --port "$port" --engine torch --precision int8 2>&1) &&
  { echo "--engine torch --precision int8 was accepted"; fail=1; }
case "$out" in *"--precision int8"*) ;; *) echo "bad --precision int8 --engine torch error: $out"; fail=1 ;; esac

rm "$tmp/model/model.safetensors"
if "$bin" serve --model "$tmp/model" --port "$port" 2> "$tmp/bad.err"; then echo "an incomplete model started"; fail=1; fi
grep -q "model.safetensors" "$tmp/bad.err" || { echo "the start-up error does not name the missing file"; fail=1; }

[ "$fail" -eq 0 ] && echo "serve CLI: all checks passed"
exit "$fail"
