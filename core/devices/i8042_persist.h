// The i8042's snapshot section: its controller and keyboard state and output buffer.
#pragma once

#include <concepts>
#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

#include "core/base/error.h"
#include "core/base/persistent.h"
#include "core/base/state_codec.h"
#include "core/devices/i8042.h"

namespace ember {

inline constexpr StateSection kI8042Section = state_sections::kI8042;

template <typename S, typename V>
    requires std::same_as<std::remove_const_t<S>, I8042State>
void describe_state(S& s, V&& v) {
    v(StateField{"command_byte"}, s.command_byte);
    v(StateField{"output_port"}, s.output_port);
    v(StateField{"pending_command"}, s.pending_command);
    v(StateField{"pending_keyboard_cmd"}, s.pending_keyboard_cmd);
    v(StateField{"last_write_was_command"}, s.last_write_was_command);
    v(StateField{"keyboard_enabled"}, s.keyboard_enabled);
    v(StateField{.name = "output bytes", .max = I8042::kOutputCapacity}, s.output);
}

std::vector<uint8_t> encode(const I8042State& s);
Result<I8042State> decode_i8042(std::span<const uint8_t> payload,
                                uint32_t version = kI8042Section.version);

}  // namespace ember
