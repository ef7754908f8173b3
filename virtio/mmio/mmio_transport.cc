#include "virtio/mmio/mmio_transport.h"

#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>

#include <algorithm>
#include <cstring>

#include "core/base/log.h"

namespace ember::virtio {
namespace {

constexpr uint32_t kMagic = 0x74726976;  // "virt"
constexpr uint32_t kVersion = 2;
constexpr uint32_t kVendor = 0;
constexpr uint64_t kConfigOffset = VIRTIO_MMIO_CONFIG;

}  // namespace

Result<std::unique_ptr<MmioTransport>> MmioTransport::create(VirtioDevice& device,
                                                             Interrupt& interrupt,
                                                             const GuestMemory& mem, const Vm* vm,
                                                             uint64_t base) {
    auto lifecycle = EventFd::create();
    EMBER_TRY(lifecycle);
    std::vector<EventFd> notify;
    for (size_t i = 0; i < device.queue_count(); ++i) {
        auto evt = EventFd::create();
        EMBER_TRY(evt);
        notify.push_back(std::move(*evt));
    }
    return std::make_unique<MmioTransport>(device, interrupt, mem, vm, base, std::move(*lifecycle),
                                           std::move(notify));
}

MmioTransport::MmioTransport(VirtioDevice& device, Interrupt& interrupt, const GuestMemory& mem,
                             const Vm* vm, uint64_t base, EventFd lifecycle,
                             std::vector<EventFd> notify)
    : device_(device),
      interrupt_(interrupt),
      mem_(mem),
      vm_(vm),
      base_(base),
      lifecycle_evt_(std::move(lifecycle)),
      notify_evts_(std::move(notify)),
      queues_(device.queue_count()) {}

Result<void> MmioTransport::attach(EventLoop& loop) {
    if (auto r = loop.add(lifecycle_evt_.fd(), EPOLLIN, [this](uint32_t) { handle_lifecycle(); });
        !r)
        return r;
    for (size_t i = 0; i < notify_evts_.size(); ++i) {
        if (auto r = loop.add(notify_evts_[i].fd(), EPOLLIN, [this, i](uint32_t) { on_notify(i); });
            !r)
            return r;
    }
    return {};
}

uint32_t MmioTransport::status() const {
    std::lock_guard lock(mutex_);
    return status_;
}

uint64_t MmioTransport::acked_features() const {
    std::lock_guard lock(mutex_);
    return driver_features_;
}

void MmioTransport::read(uint64_t offset, std::span<uint8_t> data) {
    std::fill(data.begin(), data.end(), uint8_t{0});
    if (offset >= kConfigOffset) {
        device_.read_config(offset - kConfigOffset, data);
        return;
    }
    // Registers are 32 bits wide and read as a whole; anything else reads as zero.
    if (data.size() != 4 || offset % 4 != 0) return;
    uint32_t value;
    {
        std::lock_guard lock(mutex_);
        value = read_register(offset);
    }
    std::memcpy(data.data(), &value, 4);
}

void MmioTransport::write(uint64_t offset, std::span<const uint8_t> data) {
    if (offset >= kConfigOffset) return;  // no device here has a writable config
    if (data.size() != 4 || offset % 4 != 0) return;
    uint32_t value;
    std::memcpy(&value, data.data(), 4);
    bool signal_lifecycle = false;
    {
        std::lock_guard lock(mutex_);
        size_t before = requests_.size();
        write_register(offset, value);
        signal_lifecycle = requests_.size() != before;
    }
    if (signal_lifecycle) lifecycle_evt_.signal();
}

void MmioTransport::config_changed() {
    {
        std::lock_guard lock(mutex_);
        ++config_generation_;
    }
    interrupt_.raise(kInterruptConfigChange);
}

QueueState* MmioTransport::selected_queue() {
    return queue_sel_ < queues_.size() ? &queues_[queue_sel_] : nullptr;
}

uint32_t MmioTransport::read_register(uint64_t offset) {
    QueueState* q = selected_queue();
    switch (offset) {
        case VIRTIO_MMIO_MAGIC_VALUE: return kMagic;
        case VIRTIO_MMIO_VERSION: return kVersion;
        case VIRTIO_MMIO_DEVICE_ID: return device_.device_type();
        case VIRTIO_MMIO_VENDOR_ID: return kVendor;
        case VIRTIO_MMIO_DEVICE_FEATURES:
            return device_features_sel_ < 2 ? static_cast<uint32_t>(device_.offered_features() >>
                                                                    (32 * device_features_sel_))
                                            : 0;
        case VIRTIO_MMIO_QUEUE_NUM_MAX: return q ? q->max_size : 0;
        case VIRTIO_MMIO_QUEUE_READY: return q && q->ready ? 1 : 0;
        case VIRTIO_MMIO_INTERRUPT_STATUS: return interrupt_.status();
        case VIRTIO_MMIO_STATUS: return status_;
        case VIRTIO_MMIO_CONFIG_GENERATION: return config_generation_;
        case VIRTIO_MMIO_QUEUE_DESC_LOW: return q ? static_cast<uint32_t>(q->desc_table) : 0;
        case VIRTIO_MMIO_QUEUE_DESC_HIGH: return q ? static_cast<uint32_t>(q->desc_table >> 32) : 0;
        case VIRTIO_MMIO_QUEUE_AVAIL_LOW: return q ? static_cast<uint32_t>(q->avail_ring) : 0;
        case VIRTIO_MMIO_QUEUE_AVAIL_HIGH:
            return q ? static_cast<uint32_t>(q->avail_ring >> 32) : 0;
        case VIRTIO_MMIO_QUEUE_USED_LOW: return q ? static_cast<uint32_t>(q->used_ring) : 0;
        case VIRTIO_MMIO_QUEUE_USED_HIGH: return q ? static_cast<uint32_t>(q->used_ring >> 32) : 0;
    }
    return 0;
}

void MmioTransport::write_register(uint64_t offset, uint32_t value) {
    QueueState* q = selected_queue();
    // Queue setup is the driver's only between reset and DRIVER_OK.
    const bool queue_setup = q != nullptr && !live_;
    auto set_low = [](uint64_t& field, uint32_t v) { field = (field & ~0xffffffffull) | v; };
    auto set_high = [](uint64_t& field, uint32_t v) {
        field = (field & 0xffffffffull) | (uint64_t{v} << 32);
    };
    switch (offset) {
        case VIRTIO_MMIO_DEVICE_FEATURES_SEL: device_features_sel_ = value; break;
        case VIRTIO_MMIO_DRIVER_FEATURES_SEL: driver_features_sel_ = value; break;
        case VIRTIO_MMIO_DRIVER_FEATURES:
            if (status_ & VIRTIO_CONFIG_S_FEATURES_OK) break;  // negotiation is over
            if (driver_features_sel_ == 0) set_low(driver_features_, value);
            if (driver_features_sel_ == 1) set_high(driver_features_, value);
            break;
        case VIRTIO_MMIO_QUEUE_SEL: queue_sel_ = value; break;
        case VIRTIO_MMIO_QUEUE_NUM:
            if (queue_setup) q->size = static_cast<uint16_t>(std::min<uint32_t>(value, 0xffff));
            break;
        case VIRTIO_MMIO_QUEUE_READY:
            if (queue_setup) q->ready = value == 1;
            break;
        case VIRTIO_MMIO_QUEUE_DESC_LOW:
            if (queue_setup) set_low(q->desc_table, value);
            break;
        case VIRTIO_MMIO_QUEUE_DESC_HIGH:
            if (queue_setup) set_high(q->desc_table, value);
            break;
        case VIRTIO_MMIO_QUEUE_AVAIL_LOW:
            if (queue_setup) set_low(q->avail_ring, value);
            break;
        case VIRTIO_MMIO_QUEUE_AVAIL_HIGH:
            if (queue_setup) set_high(q->avail_ring, value);
            break;
        case VIRTIO_MMIO_QUEUE_USED_LOW:
            if (queue_setup) set_low(q->used_ring, value);
            break;
        case VIRTIO_MMIO_QUEUE_USED_HIGH:
            if (queue_setup) set_high(q->used_ring, value);
            break;
        case VIRTIO_MMIO_QUEUE_NOTIFY:
            // Before the ioeventfd exists (or without KVM) the kick arrives here.
            if (value < notify_evts_.size()) notify_evts_[value].signal();
            break;
        case VIRTIO_MMIO_INTERRUPT_ACK: interrupt_.acknowledge(value); break;
        case VIRTIO_MMIO_STATUS: write_status(value); break;
        default: break;
    }
}

void MmioTransport::reset_transport_locked() {
    status_ = 0;
    device_features_sel_ = driver_features_sel_ = queue_sel_ = 0;
    driver_features_ = 0;
    for (auto& q : queues_) q = QueueState{};
    live_ = false;
    interrupt_.clear();
}

void MmioTransport::write_status(uint32_t value) {
    if (value == 0) {
        reset_transport_locked();
        device_.reset_requested();
        requests_.push_back(Request{Lifecycle::Reset, 0, {}});
        return;
    }
    // The driver only ever adds bits; anything else is ignored (only a reset clears them).
    if ((value & status_) != status_) return;
    uint32_t added = value & ~status_;
    if (added & VIRTIO_CONFIG_S_FEATURES_OK) {
        uint64_t offered = device_.offered_features();
        if ((driver_features_ & ~offered) != 0 || !(driver_features_ & kFVersion1)) {
            // Not accepting the features: FEATURES_OK stays clear and the driver gives up.
            status_ = value & ~VIRTIO_CONFIG_S_FEATURES_OK;
            return;
        }
    }
    if ((added & VIRTIO_CONFIG_S_DRIVER_OK) && !(value & VIRTIO_CONFIG_S_FEATURES_OK)) return;
    status_ = value;
    if (!(added & VIRTIO_CONFIG_S_DRIVER_OK) || (value & VIRTIO_CONFIG_S_FAILED)) return;

    std::vector<QueueState> queues = queues_;
    for (auto& q : queues) {
        q.event_idx = driver_features_ & (1ull << kRingFEventIdx);
        q.indirect = driver_features_ & (1ull << kRingFIndirectDesc);
        if (!q.ready) continue;
        if (auto r = Queue(q).validate(mem_); !r) {
            warnings_.warn([&] {
                return "virtio device type " + std::to_string(device_.device_type()) + ": queue " +
                       std::to_string(&q - queues.data()) + ": " + r.error().message;
            });
            status_ |= VIRTIO_CONFIG_S_NEEDS_RESET;
            interrupt_.raise(kInterruptConfigChange);
            return;
        }
    }
    live_ = true;
    requests_.push_back(Request{Lifecycle::Activate, driver_features_, std::move(queues)});
}

void MmioTransport::handle_lifecycle() {
    lifecycle_evt_.consume();
    std::deque<Request> requests;
    {
        std::lock_guard lock(mutex_);
        requests.swap(requests_);
    }
    for (auto r = requests.begin(); r != requests.end(); ++r) {
        if (is_reset(*r))
            deactivate();
        else if (std::none_of(r + 1, requests.end(), is_reset))
            activate(*r);
        // else the driver reset the device before it started: its rings are no longer its own.
    }
}

void MmioTransport::activate(const Request& request) {
    if (!start_device(request)) return;
    // A kick may have come before we were active; look at every queue once.
    for (size_t i = 0; i < notify_evts_.size(); ++i) device_.process_queue(i);
}

bool MmioTransport::start_device(const Request& request) {
    if (active_) deactivate();
    std::vector<Queue> queues;
    queues.reserve(request.queues.size());
    for (const auto& s : request.queues) queues.emplace_back(s);
    if (vm_ != nullptr) {
        for (size_t i = 0; i < notify_evts_.size(); ++i) {
            auto r = vm_->register_ioeventfd(notify_evts_[i].fd(), base_ + VIRTIO_MMIO_QUEUE_NOTIFY,
                                             static_cast<uint32_t>(i));
            if (!r)
                warnings_.warn([&] {
                    return "virtio: " + r.error().message +
                           "; queue kicks will exit to ember instead";
                });
            else
                ioeventfds_registered_ = true;
        }
    }
    if (auto r = device_.activate(request.features, std::move(queues)); !r) {
        ++counters_.activation_failures;
        warnings_.warn([&] {
            return "virtio device type " + std::to_string(device_.device_type()) +
                   " could not start: " + r.error().message;
        });
        {
            std::lock_guard lock(mutex_);
            status_ |= VIRTIO_CONFIG_S_NEEDS_RESET;
        }
        interrupt_.raise(kInterruptConfigChange);
        return false;
    }
    // The device's activate() forgot any reset_requested(): a reset the driver has asked for
    // since this activation was queued must hold the device again before it looks at a ring. A
    // later one calls reset_requested() itself, after this.
    {
        std::lock_guard lock(mutex_);
        if (std::ranges::any_of(requests_, is_reset)) device_.reset_requested();
    }
    active_ = true;
    ++counters_.activations;
    return true;
}

void MmioTransport::deactivate() {
    if (ioeventfds_registered_ && vm_ != nullptr) {
        for (size_t i = 0; i < notify_evts_.size(); ++i)
            (void)vm_->unregister_ioeventfd(notify_evts_[i].fd(), base_ + VIRTIO_MMIO_QUEUE_NOTIFY,
                                            static_cast<uint32_t>(i));
        ioeventfds_registered_ = false;
    }
    if (!active_) return;
    device_.reset();
    active_ = false;
    ++counters_.resets;
}

void MmioTransport::on_notify(size_t queue) {
    notify_evts_[queue].consume();
    if (active_) device_.process_queue(queue);
}

TransportState MmioTransport::state() const {
    std::lock_guard lock(mutex_);
    TransportState t{status_,    device_features_sel_, driver_features_sel_, driver_features_,
                     queue_sel_, config_generation_,   interrupt_.status(),  live_,
                     queues_};
    // With a reset or an activation still to run, the transport's queues are the driver's now,
    // not the ones the device runs on.
    if (active_ && requests_.empty()) {
        auto advanced = device_.queue_states();
        for (size_t i = 0; i < advanced.size() && i < t.queues.size(); ++i)
            t.queues[i] = advanced[i];
    }
    return t;
}

Result<void> MmioTransport::restore(const TransportState& t) {
    if (t.queues.size() != queues_.size())
        return fail("virtio device type " + std::to_string(device_.device_type()) +
                    ": snapshot has " + std::to_string(t.queues.size()) + " queues, the device " +
                    std::to_string(queues_.size()));
    {
        std::lock_guard lock(mutex_);
        status_ = t.status;
        device_features_sel_ = t.device_features_sel;
        driver_features_sel_ = t.driver_features_sel;
        driver_features_ = t.driver_features;
        queue_sel_ = t.queue_sel;
        config_generation_ = t.config_generation;
        queues_ = t.queues;
        live_ = t.live;
    }
    if (t.interrupt_status) interrupt_.raise(t.interrupt_status);
    if (!t.live) return {};
    for (const auto& q : t.queues) {
        if (!q.ready) continue;
        if (auto r = Queue(q).validate(mem_); !r)
            return fail("snapshot queue: " + r.error().message);
    }
    if (!start_device(Request{Lifecycle::Activate, t.driver_features, t.queues}))
        return fail("virtio device type " + std::to_string(device_.device_type()) +
                    " could not restart");
    for (auto& kick : notify_evts_) kick.signal();
    return {};
}

}  // namespace ember::virtio
