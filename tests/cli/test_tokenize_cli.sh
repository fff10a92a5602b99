#!/usr/bin/env bash
# `disranker tokenize --format ids` prints, line for line, the ids Hugging Face's tokenizers library gives (the
# oracle comparisons and users' scripts rely on it), and --pair prints the documented BERT pair template.
set -u
bin="$1"
root="$(cd "$(dirname "$0")/../.." && pwd)"
data="${DISRANKER_DATA:-$root/../shared/data}"
[ -f "$data/wikiqa-dev/queries.tsv" ] || { echo "shared data not found at $data: skipped"; exit 77; }
vocab="$data/weights/vocab/bert-base-uncased-vocab.txt"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0

cut -f2 "$data/wikiqa-dev/queries.tsv" > "$tmp/lines.txt"
"$bin" tokenize --tokenizer "$vocab" --format ids < "$tmp/lines.txt" > "$tmp/ours.txt" || fail=1
while IFS= read -r line; do printf '%s' "$line" | base64 -w0; echo; done < "$tmp/lines.txt" \
  | node "$root/tests/oracle/hf_encode.js" --tokenizer "$vocab" \
  | node -e 'require("readline").createInterface({input: process.stdin}).on("line", l => console.log(JSON.parse(l).ids.join(" ")))' \
  > "$tmp/hf.txt" || fail=1
if ! cmp -s "$tmp/ours.txt" "$tmp/hf.txt"; then echo "tokenize ids differ from Hugging Face:"; diff "$tmp/ours.txt" "$tmp/hf.txt" | head; fail=1; fi
echo "$(wc -l < "$tmp/ours.txt") lines compared with Hugging Face"

# [CLS] how caves [SEP] cave [SEP] (ids from bert-base-uncased: how 2129, caves 10614, cave 5430).
got=$(printf 'how caves\tcave\n' | "$bin" tokenize --tokenizer "$vocab" --pair --format ids)
[ "$got" = "101 2129 10614 102 5430 102" ] || { echo "pair template: got '$got'"; fail=1; }
got=$(printf 'how caves\n' | "$bin" tokenize --tokenizer "$vocab" --add-special --format tokens)
[ "$got" = "[CLS] how caves [SEP]" ] || { echo "--add-special: got '$got'"; fail=1; }
# A malformed --pair line is an error naming stdin and the line.
out=$(printf 'only one field\n' | "$bin" tokenize --tokenizer "$vocab" --pair 2>&1) && { echo "bad pair line accepted"; fail=1; }
case "$out" in *"<stdin>:1"*) ;; *) echo "pair error does not name the line: $out"; fail=1 ;; esac
exit $fail
