// A fuzz target's invariants: a broken one is a finding, reported and crashed on like a
// sanitizer's.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace ember::fuzz {

inline void require(bool ok, const char* invariant) {
    if (ok) return;
    std::fprintf(stderr, "invariant broken: %s\n", invariant);
    std::abort();
}

}  // namespace ember::fuzz
