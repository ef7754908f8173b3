// How the benchmarks run QEMU as their peer: microvm under KVM, started from a -bios image of one
// of perf/startup/peer_guests.S's 16-bit guests, with no devices and no display. A caller adds its
// serial, QMP and -incoming arguments.
#pragma once

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

}  // namespace ember::perf
