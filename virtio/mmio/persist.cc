#include "virtio/mmio/persist.h"

#include <array>
#include <cstddef>

#include "core/base/bytes.h"

namespace ember::virtio {
namespace {

// Queues were first written as QueueState's own bytes on x86-64, padding zeroed. They are written
// field by field in that same layout, so older files still load, and a flag that is neither 0 nor
// 1, or padding that is not zero, is refused rather than read as something ember would not write.
static_assert(sizeof(QueueState) == 40 && offsetof(QueueState, ready) == 4 &&
              offsetof(QueueState, desc_table) == 8 && offsetof(QueueState, next_avail) == 32 &&
              offsetof(QueueState, event_idx) == 36 && offsetof(QueueState, indirect) == 37);
constexpr uint32_t kMaxQueues = 8;

void put_queue(ByteWriter& w, const QueueState& q) {
    w.put(q.max_size);
    w.put(q.size);
    w.put<uint8_t>(q.ready);
    w.put(std::array<uint8_t, 3>{});
    w.put(q.desc_table);
    w.put(q.avail_ring);
    w.put(q.used_ring);
    w.put(q.next_avail);
    w.put(q.next_used);
    w.put<uint8_t>(q.event_idx);
    w.put<uint8_t>(q.indirect);
    w.put(std::array<uint8_t, 2>{});
}

Result<void> zero_padding(ByteReader& r, size_t bytes) {
    for (size_t i = 0; i < bytes; ++i) {
        auto b = r.get<uint8_t>();
        EMBER_TRY(b);
        if (*b != 0) return fail("virtio section: a queue's padding is not zero");
    }
    return {};
}

Result<QueueState> get_queue(ByteReader& r) {
    QueueState q;
    EMBER_TRY(read_into(r, q.max_size));
    EMBER_TRY(read_into(r, q.size));
    EMBER_TRY(read_into(r, q.ready));
    EMBER_TRY(zero_padding(r, 3));
    EMBER_TRY(read_into(r, q.desc_table));
    EMBER_TRY(read_into(r, q.avail_ring));
    EMBER_TRY(read_into(r, q.used_ring));
    EMBER_TRY(read_into(r, q.next_avail));
    EMBER_TRY(read_into(r, q.next_used));
    EMBER_TRY(read_into(r, q.event_idx));
    EMBER_TRY(read_into(r, q.indirect));
    EMBER_TRY(zero_padding(r, 2));
    return q;
}

void put_transport(ByteWriter& w, const TransportState& t) {
    for (uint32_t v : {t.status, t.device_features_sel, t.driver_features_sel, t.queue_sel,
                       t.config_generation, t.interrupt_status})
        w.put(v);
    w.put(t.driver_features);
    w.put<uint8_t>(t.live);
    w.put(static_cast<uint32_t>(t.queues.size()));
    for (const auto& q : t.queues) put_queue(w, q);
}

Result<TransportState> get_transport(ByteReader& r) {
    TransportState t;
    for (uint32_t* v : {&t.status, &t.device_features_sel, &t.driver_features_sel, &t.queue_sel,
                        &t.config_generation, &t.interrupt_status})
        EMBER_TRY(read_into(r, *v));
    EMBER_TRY(read_into(r, t.driver_features));
    EMBER_TRY(read_into(r, t.live));
    auto queues = r.get<uint32_t>();
    EMBER_TRY(queues);
    if (*queues > kMaxQueues)
        return fail("virtio section lists " + std::to_string(*queues) + " queues, more than " +
                    std::to_string(kMaxQueues));
    for (uint32_t i = 0; i < *queues; ++i) {
        auto q = get_queue(r);
        EMBER_TRY(q);
        t.queues.push_back(*q);
    }
    // A size above the maximum is what a driver may have written and not yet set live (the
    // transport holds any QUEUE_NUM until DRIVER_OK validates it): restore() validates a live
    // queue as DRIVER_OK would, so only the maximum, which is the device's, is checked here.
    for (const auto& q : t.queues)
        if (q.max_size > kMaxQueueSize) return fail("virtio section: bad queue size");
    return t;
}

}  // namespace

std::vector<uint8_t> encode(const VirtioSection& s) {
    ByteWriter w;
    put_transport(w, s.transport);
    w.put_bytes(s.device);
    return w.bytes();
}

Result<VirtioSection> decode_virtio_section(std::span<const uint8_t> payload, uint32_t version) {
    ByteReader r(payload, "virtio section");
    VirtioSection s;
    auto t = get_transport(r);
    EMBER_TRY(t);
    s.transport = std::move(*t);
    if (version >= 2) {
        auto device = r.get_bytes();
        EMBER_TRY(device);
        s.device = std::move(*device);
    }
    if (!r.done()) return fail("virtio section has trailing bytes");
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
