// The serial port's snapshot section: its registers and receive FIFO.
#pragma once

#include <concepts>
#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

#include "core/base/error.h"
#include "core/base/persistent.h"
#include "core/base/state_codec.h"
#include "core/devices/serial.h"

namespace ember {

inline constexpr StateSection kSerialSection = state_sections::kSerial;

template <typename S, typename V>
    requires std::same_as<std::remove_const_t<S>, SerialState>
void describe_state(S& s, V&& v) {
    v(StateField{"divisor_low"}, s.divisor_low);
    v(StateField{"divisor_high"}, s.divisor_high);
    v(StateField{"ier"}, s.ier);
    v(StateField{"lcr"}, s.lcr);
    v(StateField{"mcr"}, s.mcr);
    v(StateField{"lsr"}, s.lsr);
    v(StateField{"msr"}, s.msr);
    v(StateField{"scr"}, s.scr);
    v(StateField{"thr_empty_pending"}, s.thr_empty_pending);
    v(StateField{.name = "receive FIFO bytes", .max = Serial::kRxFifoSize}, s.rx);
}

std::vector<uint8_t> encode(const SerialState& s);
Result<SerialState> decode_serial(std::span<const uint8_t> payload,
                                  uint32_t version = kSerialSection.version);

}  // namespace ember
