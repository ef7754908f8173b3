// A virtio-mmio device's snapshot section, one per device: the transport's registers, the queues
// as the device has advanced them, and (from version 2) what the device keeps beyond them (its
// rate limiters' tokens: VirtioDevice::save_state).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/base/error.h"
#include "core/base/persistent.h"
#include "virtio/mmio/mmio_transport.h"

namespace ember::virtio {

inline constexpr StateSection kTransportSection = state_sections::kVirtio;

struct VirtioSection {
    TransportState transport;
    std::vector<uint8_t> device;  // the device's own state, opaque here; empty in version 1
};

std::vector<uint8_t> encode(const VirtioSection& s);
Result<VirtioSection> decode_virtio_section(std::span<const uint8_t> payload, uint32_t version);

}  // namespace ember::virtio
