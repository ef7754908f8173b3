// The serial port's snapshot section: its registers and receive FIFO.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "vmm/base/error.h"
#include "vmm/base/persistent.h"
#include "vmm/devices/serial.h"

namespace ember {

inline constexpr StateSection kSerialSection = state_sections::kSerial;

std::vector<uint8_t> encode(const SerialState& s);
Result<SerialState> decode_serial(std::span<const uint8_t> payload);

}  // namespace ember
