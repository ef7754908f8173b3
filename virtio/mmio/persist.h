// A virtio-mmio device's snapshot section, one per device: the transport's registers and the
// queues as the device has advanced them. Block and net keep no state beyond it.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/base/error.h"
#include "core/base/persistent.h"
#include "virtio/mmio/mmio_transport.h"

namespace ember::virtio {

inline constexpr StateSection kTransportSection = state_sections::kVirtio;

std::vector<uint8_t> encode(const TransportState& t);
Result<TransportState> decode_transport(std::span<const uint8_t> payload);

}  // namespace ember::virtio
