// Guest addresses in messages are hex, as in every VMM's and kernel's logs.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace ember {

inline std::string hex(uint64_t value) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "%#llx", static_cast<unsigned long long>(value));
    return buf;
}

}  // namespace ember
