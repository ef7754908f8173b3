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
    v(StateField{"max_size"}, q.max_size);
    v(StateField{"size"}, q.size);
    v(StateField{"ready"}, q.ready);
    v(StateField{"padding"}, after_ready);
    v(StateField{"desc_table"}, q.desc_table);
    v(StateField{"avail_ring"}, q.avail_ring);
    v(StateField{"used_ring"}, q.used_ring);
    v(StateField{"next_avail"}, q.next_avail);
    v(StateField{"next_used"}, q.next_used);
    v(StateField{"event_idx"}, q.event_idx);
    v(StateField{"indirect"}, q.indirect);
    v(StateField{"padding"}, at_end);
}

void describe_state(Is<TransportState> auto& t, auto&& v) {
    v(StateField{"status"}, t.status);
    v(StateField{"device_features_sel"}, t.device_features_sel);
    v(StateField{"driver_features_sel"}, t.driver_features_sel);
    v(StateField{"queue_sel"}, t.queue_sel);
    v(StateField{"config_generation"}, t.config_generation);
    v(StateField{"interrupt_status"}, t.interrupt_status);
    v(StateField{"driver_features"}, t.driver_features);
    v(StateField{"live"}, t.live);
    v(StateField{.name = "queues", .max = 8}, t.queues);
}

void describe_state(Is<VirtioSection> auto& s, auto&& v) {
    v(StateField{"transport"}, s.transport);
    v(StateField{.name = "device state bytes", .since = 2, .max = 64 * 1024}, s.device);
}

std::vector<uint8_t> encode(const VirtioSection& s);
Result<VirtioSection> decode_virtio_section(std::span<const uint8_t> payload, uint32_t version);

}  // namespace ember::virtio
