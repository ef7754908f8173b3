#include "virtio/mmio/persist.h"

#include "vmm/base/bytes.h"

namespace ember::virtio {

std::vector<uint8_t> encode(const TransportState& t) {
    ByteWriter w;
    for (uint32_t v : {t.status, t.device_features_sel, t.driver_features_sel, t.queue_sel,
                       t.config_generation, t.interrupt_status})
        w.put(v);
    w.put(t.driver_features);
    w.put<uint8_t>(t.live);
    put_vector(w, t.queues);
    return w.bytes();
}

Result<TransportState> decode_transport(std::span<const uint8_t> payload) {
    ByteReader r(payload, "virtio section");
    TransportState t;
    for (uint32_t* v : {&t.status, &t.device_features_sel, &t.driver_features_sel, &t.queue_sel,
                        &t.config_generation, &t.interrupt_status})
        EMBER_TRY(read_into(r, *v));
    EMBER_TRY(read_into(r, t.driver_features));
    uint8_t live = 0;
    EMBER_TRY(read_into(r, live));
    t.live = live;
    EMBER_TRY(get_vector(r, t.queues, 8));
    if (!r.done()) return fail("virtio section has trailing bytes");
    // A size above the maximum is what a driver may have written and not yet set live (the
    // transport holds any QUEUE_NUM until DRIVER_OK validates it): restore() validates a live
    // queue as DRIVER_OK would, so only the maximum, which is the device's, is checked here.
    for (const auto& q : t.queues)
        if (q.max_size > kMaxQueueSize) return fail("virtio section: bad queue size");
    return t;
}

StateSection MmioTransport::section() const {
    return kTransportSection;
}

void MmioTransport::quiesce() {
    device_.quiesce();
}

std::vector<uint8_t> MmioTransport::save() const {
    return encode(state());
}

Result<void> MmioTransport::restore(std::span<const uint8_t> payload) {
    auto t = decode_transport(payload);
    if (!t) return std::unexpected(t.error());
    return restore(*t);
}

}  // namespace ember::virtio
