// virtio/: the virtio-mmio transport, split virtqueues and the devices behind them.
//
// A VirtioDevice is a device type's logic (virtio-blk, virtio-net): its features, its config
// space, and what it does with its queues. The transport (virtio/mmio) owns the guest-facing
// registers and calls the device on the VMM thread only: activate() when the driver sets
// DRIVER_OK, process_queue() when a queue is kicked, reset() when the driver writes status 0.
// The Vmm holds its devices as a list of these and reaches each only through this interface:
// its fds, live updates and its metrics.
#pragma once

#include <any>
#include <atomic>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/error.h"
#include "core/base/metrics.h"
#include "core/config/vm_config.h"
#include "core/devices/irq.h"
#include "core/event_loop/event_loop.h"
#include "core/memory/guest_memory.h"
#include "virtio/queue/queue.h"

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

    // Its kind ("block", "net"), as metrics and snapshot tags name it.
    virtual std::string_view kind() const = 0;
    // The id its configuration gave it (drive_id, iface_id).
    virtual const std::string& id() const = 0;
    // On the VMM thread, once, before the guest runs: watches the device's own fds. The loop
    // stays the device's until it is destroyed (an update may watch new fds).
    virtual Result<void> attach(EventLoop&) { return {}; }
    // On the VMM thread, after boot: `change` is an update of the device's kind (UpdateDevice in
    // core/actions.h), which the Vmm hands it by its kind and id. True when the config space may
    // have changed, so the transport should tell the driver. On error nothing changed. A kind that
    // takes updates derives from UpdatableDevice (below); any other refuses them.
    virtual Result<bool> update(const std::any& change);
    // Firecracker's metrics: the group of the device's kind ("block", "net"), which adds up every
    // device of the kind and names this one "<kind>_<id>", and this device's fields in it. A kind
    // without metrics keeps the defaults and is left out.
    virtual std::string_view metrics_kind() const { return {}; }
    virtual std::vector<metrics::Field> metrics() const { return {}; }

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
    // On the vCPU thread whose write of status 0 asked for reset(), which runs later on the VMM
    // thread: from here the driver must see nothing more of the device (no used entry, no
    // interrupt), though a request in flight may still end in between. Cleared by the next
    // reset() or activate(). Must only set what the VMM thread reads atomically.
    virtual void reset_requested() {}
    // The queues as the device has advanced them (for snapshots and tests).
    virtual std::vector<QueueState> queue_states() const = 0;
    // With the VM paused: completes every request in flight into the guest (snapshots), or says
    // why it could not, in bounded time.
    virtual Result<void> quiesce() { return {}; }
    // At the VM's end, on the VMM thread, with no vCPU running: stops the device's I/O, waiting a
    // bounded time. False when the host kept requests that may still write into guest memory after
    // the device is gone, which must then never be unmapped into something else
    // (GuestMemory::retire).
    virtual bool end() { return true; }
    // What the device keeps beyond its queues that a snapshot carries (its rate limiters' tokens),
    // written into its section after the transport's registers; empty for a kind with none.
    virtual std::vector<uint8_t> save_state() const { return {}; }
    // Takes back what save_state() wrote, before the transport restores its queues. Empty (a file
    // from before devices kept any) leaves the device as its configuration made it.
    virtual Result<void> restore_state(std::span<const uint8_t> state) {
        if (state.empty()) return {};
        return fail(std::string(kind()) + " '" + id() + "': its kind keeps no snapshot state");
    }
};

inline Result<bool> VirtioDevice::update(const std::any&) {
    return fail(std::string(kind()) + " '" + id() + "': takes no update");
}

// A device whose kind takes live updates of type `Update`: it implements update(const Update&);
// an update of another type is refused.
template <typename Update>
class UpdatableDevice : public VirtioDevice {
  public:
    Result<bool> update(const std::any& change) final {
        const auto* u = std::any_cast<Update>(&change);
        if (u == nullptr)
            return fail(std::string(kind()) + " '" + id() + "': not an update of its kind");
        return update(*u);
    }
    virtual Result<bool> update(const Update& update) = 0;
};

}  // namespace ember::virtio
