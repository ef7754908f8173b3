// How much memory another process holds, as the kernel counts it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <fstream>
#include <string>

namespace ember::testing {

// The process's resident set (VmRSS), in bytes; 0 if it cannot be read.
inline uint64_t resident_bytes(pid_t pid) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(status, line);)
        if (line.starts_with("VmRSS:")) return std::stoull(line.substr(6)) * 1024;
    return 0;
}

}  // namespace ember::testing
