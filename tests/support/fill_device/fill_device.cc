#include "tests/support/fill_device/fill_device.h"

#include <algorithm>

namespace ember::testing {

Result<void> FillDevice::activate(uint64_t, std::vector<virtio::Queue> queues) {
    queues_ = std::move(queues);
    return {};
}

void FillDevice::process_queue(size_t index) {
    if (index >= queues_.size()) return;
    auto& queue = queues_[index];
    bool used = false;
    for (;;) {
        auto popped = queue.pop(mem_);
        if (!popped || !*popped) break;
        auto& [head, chain] = **popped;
        uint64_t written = 0;
        if (chain) {
            for (const auto& d : chain->writable()) {
                auto bytes = mem_.slice(d.addr, d.len);
                if (!bytes) break;
                std::ranges::fill(*bytes, pattern_);
                mem_.mark_dirty(d.addr, d.len);
                written += d.len;
            }
            ++chains_filled_;
        }
        (void)queue.add_used(mem_, head,
                             static_cast<uint32_t>(std::min<uint64_t>(written, UINT32_MAX)));
        used = true;
    }
    if (used && queue.needs_notification(mem_)) interrupt_.raise(virtio::kInterruptUsedRing);
}

std::vector<virtio::QueueState> FillDevice::queue_states() const {
    std::vector<virtio::QueueState> out;
    out.reserve(queues_.size());
    for (const auto& q : queues_) out.push_back(q.state());
    return out;
}

namespace {

std::vector<size_t> entries(const VmConfig&) {
    return {0};
}

Result<std::unique_ptr<virtio::VirtioDevice>> create(const VmConfig&, size_t,
                                                     const GuestMemory& memory,
                                                     virtio::Interrupt& interrupt) {
    return std::make_unique<FillDevice>(memory, interrupt);
}

}  // namespace

const virtio::VirtioKind kFillKind{
    .name = "fill", .entries = entries, .create = create, .noun = "fill device"};

}  // namespace ember::testing
