#!/usr/bin/env bash
# Builds the tokenizer fuzz targets (clang, libFuzzer, AddressSanitizer + UndefinedBehaviorSanitizer) in build-fuzz and
# runs each for SECONDS (default 60), starting from the seeds in fuzz/corpus/<target>/. What the fuzzer finds new is
# kept in build-fuzz/fuzz/corpus/<target>/ (the checked-in seeds are not touched); a crashing input is written to
# build-fuzz/fuzz/artifacts/<target>/ and the script exits 1.
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]     targets: wordpiece bpe llama2c llama2c_loader llama2c_merges (default: all)
# Environment: DISRANKER_DATA (the shared data; default ../shared/data), FUZZ_BUILD_DIR (default build-fuzz).
# Reproduce a finding: build-fuzz/fuzz/fuzz_TARGET build-fuzz/fuzz/artifacts/TARGET/crash-...
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(wordpiece bpe llama2c llama2c_loader llama2c_merges)
build_dir="${FUZZ_BUILD_DIR:-build-fuzz}"

if ! command -v clang++ >/dev/null 2>&1; then
  echo "fuzz.sh: clang++ not found; libFuzzer needs clang (Debian: apt-get install clang libclang-rt-dev)" >&2
  exit 1
fi

CC=clang CXX=clang++ cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDISRANKER_FUZZ=ON \
  -DBUILD_TESTING=OFF >/dev/null
binaries=()
for t in "${targets[@]}"; do binaries+=("fuzz_$t"); done
cmake --build "$build_dir" --target "${binaries[@]}"

status=0
for t in "${targets[@]}"; do
  corpus="$build_dir/fuzz/corpus/$t"
  artifacts="$build_dir/fuzz/artifacts/$t/"
  log="$build_dir/fuzz/$t.log"
  mkdir -p "$corpus" "$artifacts"
  echo "== fuzz_$t for ${seconds}s (log: $log)"
  if "$build_dir/fuzz/fuzz_$t" "$corpus" "fuzz/corpus/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$artifacts" -print_final_stats=1 >"$log" 2>&1; then
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' "$log" |
      sed 's/^stat::/   /' || true
    grep -E '^#[0-9]+.*(DONE|cov:)' "$log" | tail -n 1 | sed 's/^/   /' || true
  else
    echo "fuzz_$t: FAILED; the input is in $artifacts" >&2
    grep -E 'ERROR|invariant broken|SUMMARY|Test unit written' "$log" | head -n 10 >&2 || true
    status=1
  fi
done
exit $status
