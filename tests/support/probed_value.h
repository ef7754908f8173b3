// Reading what a test guest printed of what it probed (tests/guest/cpuid_probe.c prints lines such
// as "cpuid1 ebx=... ecx=..."): the hex number after a key on a given line.
#pragma once

#include <cstdint>
#include <string>

namespace ember::testing {

// The hex number after `key` on the console's line that starts with `line`; all ones when the
// console has no such line or key.
inline uint64_t printed(const std::string& out, const std::string& line, const std::string& key) {
    const auto at = out.find(line);
    if (at == std::string::npos) return ~uint64_t{0};
    const auto k = out.find(key, at);
    if (k == std::string::npos) return ~uint64_t{0};
    return std::stoull(out.substr(k + key.size(), 18), nullptr, 16);
}

}  // namespace ember::testing
