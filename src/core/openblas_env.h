// OpenBLAS 0.3.21 (Debian bookworm) does not recognise this machine's Xeon and falls back to SSE3 kernels, 3-4x
// slower than its SkylakeX ones (STACK.md). It reads OPENBLAS_CORETYPE in a library constructor, before main()
// runs, so the only way to set it for our own process is to set it and re-execute the binary once.
#pragma once

namespace disranker {

// When OPENBLAS_CORETYPE is unset and the CPU has AVX-512F (SkylakeX kernels) or AVX2 (Haswell kernels), sets it
// and re-executes /proc/self/exe with the same arguments; returns normally otherwise (variable already set, by the
// user or by the re-executed process, or a CPU without either extension). A user's own setting is never changed.
void ensure_openblas_coretype(char** argv);

}  // namespace disranker
