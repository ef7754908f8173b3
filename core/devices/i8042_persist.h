// The i8042's snapshot section: its controller and keyboard state and output buffer.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/base/error.h"
#include "core/base/persistent.h"
#include "core/devices/i8042.h"

namespace ember {

inline constexpr StateSection kI8042Section = state_sections::kI8042;

std::vector<uint8_t> encode(const I8042State& s);
Result<I8042State> decode_i8042(std::span<const uint8_t> payload);

}  // namespace ember
