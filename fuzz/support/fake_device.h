// A virtio device that keeps the transport honest: it records what the transport asks of it and
// checks, as it is asked, what a transport must never do (activate twice, activate with a queue
// that does not validate, with features it did not offer).
#pragma once

#include <vector>

#include "fuzz/support/require.h"
#include "virtio/device.h"

namespace ember::fuzz {

class FakeDevice : public virtio::VirtioDevice {
  public:
    explicit FakeDevice(const GuestMemory& mem) : mem_(mem) {}

    std::string_view kind() const override { return "fake"; }
    const std::string& id() const override { return id_; }
    uint32_t device_type() const override { return 2; }
    uint64_t offered_features() const override {
        return virtio::kFVersion1 | (1ull << virtio::kRingFEventIdx) |
               (1ull << virtio::kRingFIndirectDesc) | (1ull << 5);
    }
    size_t queue_count() const override { return 2; }
    void read_config(uint64_t offset, std::span<uint8_t> data) const override {
        for (size_t i = 0; i < data.size(); ++i)
            data[i] = offset + i < 8 ? static_cast<uint8_t>(offset + i) : 0;
    }
    Result<void> activate(uint64_t acked, std::vector<virtio::Queue> queues) override {
        require(!active_, "no second activation without a reset between");
        require((acked & ~offered_features()) == 0, "only offered features are acked");
        require(acked & virtio::kFVersion1, "a device is activated only with VERSION_1");
        require(queues.size() == queue_count(), "every queue is handed over");
        for (const auto& q : queues)
            require(!q.state().ready || q.validate(mem_).has_value(),
                    "a ready queue handed to a device validates");
        active_ = true;
        queues_ = std::move(queues);
        return {};
    }
    void process_queue(size_t index) override {
        require(active_, "a queue is processed only while the device is active");
        require(index < queue_count(), "a kick names a queue the device has");
    }
    void reset() override {
        active_ = false;
        queues_.clear();
    }
    std::vector<virtio::QueueState> queue_states() const override {
        std::vector<virtio::QueueState> out;
        for (const auto& q : queues_) out.push_back(q.state());
        return out;
    }

  private:
    std::string id_ = "fake";
    const GuestMemory& mem_;
    bool active_ = false;
    std::vector<virtio::Queue> queues_;
};

class NullIrq : public IrqTrigger {
  public:
    void trigger() override {}
};

}  // namespace ember::fuzz
