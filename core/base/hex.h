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

// "0x0" for zero too: a CPUID leaf, subleaf or MSR index as Firecracker's templates and messages
// write them (hex() above prints zero as "0", which a template's parser refuses).
inline std::string hex32(uint32_t value) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%x", value);
    return buf;
}

}  // namespace ember
