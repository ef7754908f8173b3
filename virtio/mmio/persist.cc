#include "virtio/mmio/persist.h"

namespace ember::virtio {

std::vector<uint8_t> encode(const VirtioSection& s) {
    return encode_state(s, kTransportSection.version);
}

Result<VirtioSection> decode_virtio_section(std::span<const uint8_t> payload, uint32_t version) {
    auto s = decode_state<VirtioSection>(payload, version, "virtio section");
    EMBER_TRY(s);
    // A size above the maximum is what a driver may have written and not yet set live (the
    // transport holds any QUEUE_NUM until DRIVER_OK validates it): restore() validates a live
    // queue as DRIVER_OK would, so only the maximum, which is the device's, is checked here.
    for (const auto& q : s->transport.queues)
        if (q.max_size > kMaxQueueSize) return fail("virtio section: bad queue size");
    return s;
}

StateSection MmioTransport::section() const {
    return kTransportSection;
}

Result<void> MmioTransport::quiesce() {
    return device_.quiesce();
}

std::vector<uint8_t> MmioTransport::save() const {
    return encode(VirtioSection{state(), device_.save_state()});
}

// Version 1 has no device state: the device keeps what its configuration made.
Result<void> MmioTransport::restore(std::span<const uint8_t> payload, uint32_t version) {
    auto s = decode_virtio_section(payload, version);
    EMBER_TRY(s);
    EMBER_TRY(device_.restore_state(s->device));
    return restore(s->transport);
}

}  // namespace ember::virtio
