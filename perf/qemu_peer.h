// How the benchmarks run QEMU as their peer: microvm under KVM, started from a -bios image of one
// of perf/startup/peer_guests.S's 16-bit guests, with no devices and no display. A caller adds its
// serial, QMP and -incoming arguments.
#pragma once

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

namespace ember::perf {

// The image: the guest's blob at f000:0000 and a far jump there from the reset vector, the rest
// HLT.
inline std::string bios_image(const std::string& blob) {
    std::string img(65536, '\xf4');
    img.replace(0, blob.size(), blob);
    const char jump[] = {'\xea', 0, 0, 0, '\xf0'};
    img.replace(0xfff0, sizeof jump, jump, sizeof jump);
    return img;
}

inline std::vector<std::string> qemu_microvm(const std::string& qemu, const std::string& bios,
                                             unsigned mem_mib) {
    return {qemu,
            "-M",
            "microvm,x-option-roms=off,rtc=off",
            "-accel",
            "kvm",
            "-bios",
            bios,
            "-nodefaults",
            "-no-user-config",
            "-nographic",
            "-display",
            "none",
            "-m",
            std::to_string(mem_mib)};
}

// The host's MemAvailable in MiB, from /proc/meminfo; -1 when it cannot be read.
inline long long mem_available_mib() {
    std::ifstream in("/proc/meminfo");
    for (std::string line; std::getline(in, line);) {
        long long kib = 0;
        if (std::sscanf(line.c_str(), "MemAvailable: %lld kB", &kib) == 1) return kib / 1024;
    }
    return -1;
}

// Why QEMU cannot hold a guest of `mem_mib` on this host, or "" when it can. QEMU reserves all of
// its guest RAM as it starts, and the kernel's default (heuristic) overcommit refuses a reservation
// larger than the machine: inside tests/nested/run's 4 GiB VM a 4 GiB guest is that, and QEMU
// exits before its QMP socket answers. Measured against MemAvailable, what the host can give
// without pushing out anything else, since a guest that fits only on paper is no peer to time.
inline std::string qemu_cannot_fit(unsigned mem_mib) {
    const long long available = mem_available_mib();
    if (available < 0) return "";  // nothing to measure against: QEMU itself will say
    if (static_cast<long long>(mem_mib) <= available) return "";
    return "the " + std::to_string(mem_mib) + " MiB guest does not fit in " +
           std::to_string(available) + " MiB available";
}

}  // namespace ember::perf
