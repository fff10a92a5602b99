// Counts the C++ heap allocations (operator new, every thread) made while a function runs: the test
// executable that links allocation_counter.cc replaces the global operator new to count while a count is
// open. Allocations by C code (malloc: oneDNN's and libgomp's own) are not seen.
#pragma once

#include <cstdint>
#include <functional>

namespace disranker::testing {

// Whether this build counts: false under AddressSanitizer, which brings its own operator new.
bool allocations_counted();

// The operator new calls made, in any thread, while `work` runs.
std::int64_t allocations_during(const std::function<void()>& work);

}  // namespace disranker::testing
