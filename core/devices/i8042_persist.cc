#include "core/devices/i8042_persist.h"

namespace ember {

std::vector<uint8_t> encode(const I8042State& s) {
    return encode_state(s, kI8042Section.version);
}

Result<I8042State> decode_i8042(std::span<const uint8_t> payload, uint32_t version) {
    return decode_state<I8042State>(payload, version, "i8042 section");
}

StateSection I8042::section() const {
    return kI8042Section;
}

std::vector<uint8_t> I8042::save() const {
    return encode(state());
}

Result<void> I8042::restore(std::span<const uint8_t> payload, uint32_t version) {
    auto s = decode_i8042(payload, version);
    EMBER_TRY(s);
    restore(*s);
    return {};
}

}  // namespace ember
