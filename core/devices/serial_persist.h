// The serial port's snapshot section: its registers and receive FIFO.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/base/error.h"
#include "core/base/persistent.h"
#include "core/devices/serial.h"

namespace ember {

inline constexpr StateSection kSerialSection = state_sections::kSerial;

std::vector<uint8_t> encode(const SerialState& s);
Result<SerialState> decode_serial(std::span<const uint8_t> payload);

}  // namespace ember
