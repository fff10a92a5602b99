#!/usr/bin/env bash
# Every subcommand answers --help; bad usage and bad input fail with a message and a non-zero status.
set -u
bin="$1"
fail=0
check() { if ! "$@" >/dev/null 2>&1; then echo "FAILED: $*"; fail=1; fi; }
check_fails() { if "$@" >/dev/null 2>&1; then echo "SHOULD HAVE FAILED: $*"; fail=1; fi; }

check "$bin" --help
check "$bin" --version
commands=$("$bin" --help | awk 'tolower($0) ~ /^subcommands:/{on=1; next} on && NF {print $1}')
[ -n "$commands" ] || { echo "no subcommands listed in --help"; exit 1; }
for c in $commands; do check "$bin" "$c" --help; done
check_fails "$bin"
check_fails "$bin" no-such-command
check_fails "$bin" eval --qrels /nonexistent --run /nonexistent

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
printf 'q1 0 d1 1\nq1 0 d2 x\n' > "$tmp/qrels"
printf 'q1 Q0 d1 1 1.0 t\n' > "$tmp/run"
out=$("$bin" eval --qrels "$tmp/qrels" --run "$tmp/run" 2>&1) && { echo "bad grade accepted"; fail=1; }
case "$out" in *"$tmp/qrels:2: grade:"*) ;; *) echo "error does not name file:line: field: $out"; fail=1 ;; esac
exit $fail
