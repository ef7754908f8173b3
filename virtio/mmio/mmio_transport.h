// virtio-mmio (version 2) registers in one 4 KiB slot: identification, feature negotiation in two
// 32-bit halves, the device status state machine (FAILED and reset included), per-queue setup,
// InterruptStatus/ACK, config generation and the device's config space.
//
// Threads: register accesses arrive on vCPU threads and are serialised by the transport's mutex.
// The device runs on the VMM thread. The two meet only through (a) lifecycle requests (activate on
// DRIVER_OK, reset on status 0) that the transport queues in order and signals through an eventfd
// the VMM thread handles, (b) one eventfd per queue: an ioeventfd KVM signals directly once the
// device is active, and which the transport signals itself for a notify that arrives as an MMIO
// exit before that, and (c) the atomic InterruptStatus. Queue addresses are copied to the device at
// activation; the transport ignores queue setup writes while the device is live.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <vector>

#include "core/base/event_fd.h"
#include "core/base/log_limit.h"
#include "core/base/persistent.h"
#include "core/devices/bus.h"
#include "core/event_loop/event_loop.h"
#include "core/kvm/vm.h"
#include "virtio/device.h"

namespace ember::virtio {

// The transport's guest-visible registers and queues, for snapshots.
struct TransportState {
    uint32_t status = 0;
    uint32_t device_features_sel = 0;
    uint32_t driver_features_sel = 0;
    uint64_t driver_features = 0;
    uint32_t queue_sel = 0;
    uint32_t config_generation = 0;
    uint32_t interrupt_status = 0;
    bool live = false;
    std::vector<QueueState> queues;  // as the device has advanced them when live
};

class MmioTransport : public BusDevice, public Persistent {
  public:
    // `base` is the slot's guest physical address (for the ioeventfds).
    static Result<std::unique_ptr<MmioTransport>> create(VirtioDevice& device, Interrupt& interrupt,
                                                         const GuestMemory& mem, const Vm* vm,
                                                         uint64_t base);

    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

    // Hooks the transport's eventfds into the VMM thread's loop.
    Result<void> attach(EventLoop& loop);
    // The device's config space changed (a drive's new capacity): a new config generation and
    // a config-change interrupt, so the driver reads it again.
    void config_changed();

    uint32_t status() const;
    uint64_t acked_features() const;
    bool active() const { return active_; }  // VMM thread only

    // VMM thread, with the vCPUs paused.
    TransportState state() const;
    // VMM thread, before the vCPUs run: puts the registers back and, if the device was live,
    // activates it with its queues where they were. Requests the guest left in its queues are
    // not served here but posted as kicks, which the event loop serves once the whole restore has
    // succeeded: a load that fails after this device has written nothing to its backend.
    Result<void> restore(const TransportState& state);

    // Persistent (persist.cc): the transport speaks for its device, which keeps no state beyond
    // the queues; quiesce() waits for the device's requests in flight.
    StateSection section() const override;
    Result<void> quiesce() override;
    std::vector<uint8_t> save() const override;
    Result<void> restore(std::span<const uint8_t> payload, uint32_t version) override;

    struct Counters {
        uint64_t activations = 0;
        uint64_t activation_failures = 0;
        uint64_t resets = 0;
    };
    const Counters& counters() const { return counters_; }

    // Constructed through create(), which also makes the eventfds.
    MmioTransport(VirtioDevice& device, Interrupt& interrupt, const GuestMemory& mem, const Vm* vm,
                  uint64_t base, EventFd lifecycle, std::vector<EventFd> notify);

  private:
    enum class Lifecycle { Activate, Reset };
    struct Request {
        Lifecycle op;
        uint64_t features = 0;
        std::vector<QueueState> queues;
    };
    static bool is_reset(const Request& r) { return r.op == Lifecycle::Reset; }

    uint32_t read_register(uint64_t offset);
    void write_register(uint64_t offset, uint32_t value);
    void write_status(uint32_t value);
    QueueState* selected_queue();
    void reset_transport_locked();

    // VMM thread.
    void handle_lifecycle();
    void activate(const Request& request);
    bool start_device(const Request& request);
    void deactivate();
    void on_notify(size_t queue);

    VirtioDevice& device_;
    Interrupt& interrupt_;
    const GuestMemory& mem_;
    const Vm* vm_;  // null in tests: no ioeventfds
    uint64_t base_;
    EventFd lifecycle_evt_;
    std::vector<EventFd> notify_evts_;

    mutable std::mutex mutex_;  // everything below until active_, and the request queue
    uint32_t status_ = 0;
    uint32_t device_features_sel_ = 0;
    uint32_t driver_features_sel_ = 0;
    uint64_t driver_features_ = 0;
    uint32_t queue_sel_ = 0;
    uint32_t config_generation_ = 0;
    std::vector<QueueState> queues_;
    bool live_ = false;  // DRIVER_OK seen and not yet reset: queue setup is frozen
    std::deque<Request> requests_;

    bool active_ = false;  // VMM thread only
    bool ioeventfds_registered_ = false;
    Counters counters_;
    // Every line below is one the guest can cause, as often as it likes.
    log::LineLimit warnings_;
};

}  // namespace ember::virtio
