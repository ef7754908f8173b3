// A virtio-mmio device's snapshot section, one per device: the transport's registers, the queues
// as the device has advanced them, and (from version 2) what the device keeps beyond them (its
// rate limiters' tokens: VirtioDevice::save_state).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/base/described.h"
#include "core/base/error.h"
#include "core/base/persistent.h"
#include "core/base/state_codec.h"
#include "virtio/mmio/mmio_transport.h"

namespace ember::virtio {

inline constexpr StateSection kTransportSection = state_sections::kVirtio;

struct VirtioSection {
    TransportState transport;
    std::vector<uint8_t> device;  // the device's own state, opaque here; empty in version 1
};

// Queues were first written as QueueState's own bytes on x86-64, padding zeroed: they keep that
// layout, so older files still load, and padding that is not zero is refused.
void describe_state(Is<QueueState> auto& q, auto&& v) {
    ZeroBytes<3> after_ready;
    ZeroBytes<2> at_end;
    leaves(v, q.max_size, q.size, q.ready);
    v(StateField{"padding"}, after_ready);
    leaves(v, q.desc_table, q.avail_ring, q.used_ring, q.next_avail, q.next_used, q.event_idx,
           q.indirect);
    v(StateField{"padding"}, at_end);
}

void describe_state(Is<TransportState> auto& t, auto&& v) {
    leaves(v, t.status, t.device_features_sel, t.driver_features_sel, t.queue_sel,
           t.config_generation, t.interrupt_status, t.driver_features, t.live);
    v(StateField{.name = "queues", .max = 8}, t.queues);
}

void describe_state(Is<VirtioSection> auto& s, auto&& v) {
    v(StateField{"transport"}, s.transport);
    v(StateField{.name = "device state bytes", .since = 2, .max = 64 * 1024}, s.device);
}

std::vector<uint8_t> encode(const VirtioSection& s);
Result<VirtioSection> decode_virtio_section(std::span<const uint8_t> payload, uint32_t version);

}  // namespace ember::virtio
