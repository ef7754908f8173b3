// A benchmark's quick mode (EMBER_PERF_QUICK=1): the fewest sizes and repetitions that still print
// its whole table, so that tests/run-all can run every benchmark and notice one that no longer
// does. Its figures mean nothing.
#pragma once

#include <cstdlib>
#include <string_view>

namespace ember::perf {

inline bool quick_mode() {
    const char* v = std::getenv("EMBER_PERF_QUICK");
    return v != nullptr && std::string_view(v) != "" && std::string_view(v) != "0";
}

}  // namespace ember::perf
