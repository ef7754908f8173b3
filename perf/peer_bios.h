// QEMU's -bios image for a peer guest of perf/startup/peer_guests.S: the 16-bit blob at f000:0000
// and a far jump there from the reset vector, the rest HLT.
#pragma once

#include <string>

namespace ember::perf {

inline std::string bios_image(const std::string& blob) {
    std::string img(65536, '\xf4');
    img.replace(0, blob.size(), blob);
    const char jump[] = {'\xea', 0, 0, 0, '\xf0'};
    img.replace(0xfff0, sizeof jump, jump, sizeof jump);
    return img;
}

}  // namespace ember::perf
