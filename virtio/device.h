// virtio/: the virtio-mmio transport, split virtqueues and the devices behind them.
//
// A VirtioDevice is a device type's logic (virtio-blk, virtio-net): its features, its config
// space, and what it does with its queues. The transport (virtio/mmio) owns the guest-facing
// registers and calls the device on the VMM thread only: activate() when the driver sets
// DRIVER_OK, process_queue() when a queue is kicked, reset() when the driver writes status 0.
#pragma once

#include <atomic>
#include <cstdint>
#include <span>
#include <vector>

#include "virtio/queue/queue.h"
#include "vmm/base/error.h"
#include "vmm/devices/irq.h"
#include "vmm/memory/guest_memory.h"

namespace ember::virtio {

inline constexpr uint64_t kFVersion1 = 1ull << 32;
inline constexpr uint32_t kInterruptUsedRing = 1;
inline constexpr uint32_t kInterruptConfigChange = 2;

// InterruptStatus: set by the device on the VMM thread, read and acknowledged by the driver on a
// vCPU thread; hence atomic. Raising a bit also raises an edge on the device's GSI.
class Interrupt {
  public:
    explicit Interrupt(IrqTrigger& irq) : irq_(irq) {}
    void raise(uint32_t reason) {
        status_.fetch_or(reason, std::memory_order_acq_rel);
        irq_.trigger();
    }
    uint32_t status() const { return status_.load(std::memory_order_acquire); }
    void acknowledge(uint32_t bits) { status_.fetch_and(~bits, std::memory_order_acq_rel); }
    void clear() { status_.store(0, std::memory_order_release); }

  private:
    IrqTrigger& irq_;
    std::atomic<uint32_t> status_{0};
};

class VirtioDevice {
  public:
    virtual ~VirtioDevice() = default;

    virtual uint32_t device_type() const = 0;
    virtual uint64_t offered_features() const = 0;
    virtual size_t queue_count() const = 0;
    // Device config space; out-of-range bytes read as zero. Called on vCPU threads: the config
    // must not change after creation or must be guarded by the device.
    virtual void read_config(uint64_t offset, std::span<uint8_t> data) const = 0;

    // On the VMM thread. `queues` are validated; the device keeps them until reset().
    virtual Result<void> activate(uint64_t acked_features, std::vector<Queue> queues) = 0;
    virtual void process_queue(size_t index) = 0;
    // Stops all use of guest memory, waiting for in-flight I/O, and forgets the queues.
    virtual void reset() = 0;
    // The queues as the device has advanced them (for snapshots and tests).
    virtual std::vector<QueueState> queue_states() const = 0;
    // With the VM paused: completes every request in flight into the guest (snapshots).
    virtual void quiesce() {}
};

}  // namespace ember::virtio
