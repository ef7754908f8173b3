#include "core/devices/serial_persist.h"

namespace ember {

std::vector<uint8_t> encode(const SerialState& s) {
    return encode_state(s, kSerialSection.version);
}

Result<SerialState> decode_serial(std::span<const uint8_t> payload, uint32_t version) {
    return decode_state<SerialState>(payload, version, "serial section");
}

StateSection Serial::section() const {
    return kSerialSection;
}

std::vector<uint8_t> Serial::save() const {
    return encode(state());
}

Result<void> Serial::restore(std::span<const uint8_t> payload, uint32_t version) {
    auto s = decode_serial(payload, version);
    EMBER_TRY(s);
    restore(*s);
    return {};
}

}  // namespace ember
