// A trivial virtio device kind, for tests: one device in every VM, "fill0", with one queue whose
// chains come back with every writable byte set to the device's pattern, which a live update
// (FillUpdate) changes. This folder and one line in a list of kinds (VmmOptions::virtio_kinds)
// are all it takes to give VMs a device of it: the Vmm plans its slot, announces it on the
// kernel's command line, wires its transport and interrupt, lists it with its kind and id, and
// hands it its updates by kind and id, through virtio::VirtioKind and VirtioDevice.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "virtio/kind.h"

namespace ember::testing {

inline constexpr uint8_t kFillPattern = 0x5a;

// The kind's own live update, as a PATCH body would carry it.
struct FillUpdate {
    uint8_t pattern = kFillPattern;
};

class FillDevice : public virtio::UpdatableDevice<FillUpdate> {
  public:
    FillDevice(const GuestMemory& mem, virtio::Interrupt& interrupt)
        : mem_(mem), interrupt_(interrupt) {}

    std::string_view kind() const override { return "fill"; }
    const std::string& id() const override { return id_; }
    // virtio's entropy device id, as virtio-rng's: a driver posts buffers for the device to fill.
    uint32_t device_type() const override { return 4; }
    uint64_t offered_features() const override { return virtio::kFVersion1; }
    size_t queue_count() const override { return 1; }
    void read_config(uint64_t, std::span<uint8_t> data) const override {
        std::ranges::fill(data, uint8_t{0});
    }
    Result<void> activate(uint64_t, std::vector<virtio::Queue> queues) override;
    void process_queue(size_t index) override;
    void reset() override { queues_.clear(); }
    std::vector<virtio::QueueState> queue_states() const override;

    Result<bool> update(const FillUpdate& update) override {
        if (update.pattern == 0) return fail("fill '" + id_ + "': a pattern of 0 fills nothing");
        pattern_ = update.pattern;
        return false;
    }

    uint64_t chains_filled() const { return chains_filled_; }
    uint8_t pattern() const { return pattern_; }

  private:
    const GuestMemory& mem_;
    virtio::Interrupt& interrupt_;
    std::string id_ = "fill0";
    std::vector<virtio::Queue> queues_;
    uint64_t chains_filled_ = 0;
    uint8_t pattern_ = kFillPattern;
};

extern const virtio::VirtioKind kFillKind;

}  // namespace ember::testing
