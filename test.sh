#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs the whole test suite under CTest, first in the
# normal build (build/), then in the AddressSanitizer + UndefinedBehaviorSanitizer build (build-asan/).
#   ./test.sh             both builds
#   ./test.sh --no-asan   the normal build only (quicker while developing)
set -euo pipefail
cd "$(dirname "$0")"
export DISRANKER_DATA="${DISRANKER_DATA:-$(pwd)/../shared/data}"

asan=1
for arg in "$@"; do
  case "$arg" in
    --no-asan) asan=0 ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) echo "unknown option: $arg" >&2; exit 2 ;;
  esac
done

scripts/install-deps.sh
# OpenBLAS 0.3.21 misdetects this CPU (STACK.md): pick its AVX-512 kernels for the test processes too.
if [ -z "${OPENBLAS_CORETYPE:-}" ] && grep -qw avx512f /proc/cpuinfo; then export OPENBLAS_CORETYPE=SkylakeX; fi
# The Hugging Face tokenizers library (npm, offline native binding) is the tests' reference for token ids;
# ONNX Runtime (onnxruntime-node, CPU binaries bundled) runs the exported models. ONNXRUNTIME_NODE_INSTALL=skip
# stops its install script from fetching the optional CUDA binaries.
if [ ! -d tests/oracle/node_modules/tokenizers ] || [ ! -d tests/oracle/node_modules/onnxruntime-node ]; then
  ONNXRUNTIME_NODE_INSTALL=skip npm install --prefix tests/oracle --no-audit --no-fund --loglevel=error
fi
scripts/build.sh build
(cd build && ctest --output-on-failure --timeout 600)

if [ "$asan" = 1 ]; then
  scripts/build.sh build-asan -DDISRANKER_SANITIZE=ON -DDISRANKER_WITH_TORCH=OFF
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  # The Hugging Face identity checks (names with Oracle/HuggingFace) are dominated by Node's time and already ran
  # in the normal build; under the sanitizers every other test runs, the tokenizers' unit tests included.
  (cd build-asan && ctest --output-on-failure --timeout 900 -E 'Oracle|HuggingFace')
fi
