#include "virtio/net/net_device.h"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/base/log.h"

namespace ember::virtio {
namespace {

constexpr uint16_t kLinkUp = 1;
constexpr size_t kNumBuffersOffset = 10;  // in virtio_net_hdr_v1
// Frames read from the tap per engine call: io_uring's take one system call for the batch; a
// system call per frame gains nothing from reading ahead of the guest's buffers.
constexpr size_t kAsyncRxBatch = 32;
// Frames handed to the engine per call.
constexpr size_t kTxBatch = 64;
// What a batch read may take, by the largest frame of the one before: 32 frames of 64 KiB do not
// stay in the cache until they are copied to the guest, and read so they ran at 0.67x of a frame
// at a time (perf/net).
constexpr size_t kRxBatchBytes = 256 << 10;
// Where the RX slots start in their pages. The tap's copy into a slot (rep movsb in the kernel)
// ran 3-4x slower where the frame's first byte landed at the page offset of the kernel's own copy
// of it, or a few bytes below (4K aliasing; perf/net, 64 KiB frames into page-aligned slots,
// whose frame starts after the 12-byte header). None starts a page, and each starts 64 bytes
// further into its page than the one before (a stride of 16 pages and 64 bytes), so that a
// frame's offset in the kernel can meet a slot's only now and then.
constexpr size_t kSlotOffset = 64;
constexpr size_t kSlotStride = 16 * 4096 + 64;
static_assert(NetDevice::kMaxFrame <= kSlotStride);

uint64_t bit(uint32_t b) {
    return 1ull << b;
}

}  // namespace

std::array<uint8_t, 6> parse_mac(const std::string& mac) {
    std::array<uint8_t, 6> out{};
    for (size_t i = 0; i < 6; ++i)
        out[i] = static_cast<uint8_t>(std::stoi(mac.substr(i * 3, 2), nullptr, 16));
    return out;
}

Result<std::unique_ptr<NetDevice>> NetDevice::create(const NetworkInterfaceConfig& config,
                                                     const GuestMemory& mem, Interrupt& interrupt,
                                                     TimeSource clock) {
    auto tap = Tap::open(config.host_dev_name);
    EMBER_TRY(tap, "network interface '" + config.iface_id + "'");
    return create(config, mem, interrupt, std::move(*tap), std::move(clock));
}

Result<std::unique_ptr<NetDevice>> NetDevice::create(const NetworkInterfaceConfig& config,
                                                     const GuestMemory& mem, Interrupt& interrupt,
                                                     Tap opened, TimeSource clock) {
    const std::string who = "network interface '" + config.iface_id + "'";
    auto tap = std::make_unique<Tap>(std::move(opened));
    auto mtu = tap->mtu();
    auto rx = RateLimiter::create(config.rx_rate_limiter, clock());
    EMBER_TRY(rx, who);
    auto tx = RateLimiter::create(config.tx_rate_limiter, clock());
    EMBER_TRY(tx, who);
    std::optional<std::array<uint8_t, 6>> mac;
    if (config.guest_mac) mac = parse_mac(*config.guest_mac);

    NetworkInterfaceConfig effective = config;
    std::unique_ptr<NetEngine> engine;
    if (config.io_engine == IoEngineType::Sync) {
        engine = make_sync_net_engine(*tap);
    } else if (auto uring = make_uring_net_engine(*tap); uring) {
        engine = std::move(*uring);
    } else if (uring.error().kind == ErrorKind::Unavailable) {
        // As for a drive: an old kernel, io_uring_disabled, or a container's seccomp profile.
        log::warn(who + ": io_uring is unavailable (" + uring.error().message +
                  "): using io_engine Sync");
        engine = make_sync_net_engine(*tap);
        effective.io_engine = IoEngineType::Sync;
    } else {
        return std::unexpected(std::move(uring.error()).wrap(who + ": io_engine Async"));
    }
    // Mapped, not allocated: an idle device's buffers take no memory until frames arrive.
    const size_t slots = effective.io_engine == IoEngineType::Async ? kAsyncRxBatch : 1;
    auto buffers = Mapping::map(kSlotOffset + slots * kSlotStride, PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE);
    EMBER_TRY(buffers, who + ": RX buffers");
    return std::make_unique<NetDevice>(effective, mem, interrupt, std::move(tap), std::move(engine),
                                       std::move(*buffers), mac, mtu.value_or(1500), std::move(*rx),
                                       std::move(*tx), std::move(clock));
}

NetDevice::NetDevice(NetworkInterfaceConfig config, const GuestMemory& mem, Interrupt& interrupt,
                     std::unique_ptr<Tap> tap, std::unique_ptr<NetEngine> engine,
                     Mapping rx_buffers, std::optional<std::array<uint8_t, 6>> mac, uint16_t mtu,
                     RateLimiter rx_limiter, RateLimiter tx_limiter, TimeSource clock)
    : config_(std::move(config)),
      mem_(mem),
      interrupt_(interrupt),
      tap_(std::move(tap)),
      rx_buffers_(std::move(rx_buffers)),
      engine_(std::move(engine)),
      mac_(mac),
      mtu_(mtu),
      rx_limiter_(std::move(rx_limiter)),
      tx_limiter_(std::move(tx_limiter)),
      clock_(std::move(clock)) {
    for (size_t at = kSlotOffset; at + kMaxFrame <= rx_buffers_.size(); at += kSlotStride)
        rx_slots_.emplace_back(rx_buffers_.data() + at, kMaxFrame);
    rx_lengths_.resize(rx_slots_.size());
    features_ = kFVersion1 | bit(kRingFEventIdx) | bit(kRingFIndirectDesc) | bit(net::kStatus) |
                bit(net::kMrgRxbuf) | bit(net::kMtu);
    if (mac_) features_ |= bit(net::kMac);
    // Frames from the guest with partial checksums or GSO go to the tap as they are: it takes them.
    features_ |= bit(net::kCsum) | bit(net::kHostTso4) | bit(net::kHostTso6);
    const auto& tap_can = tap_->supported();
    if (tap_can.ufo) features_ |= bit(net::kHostUfo);
    // Frames to the guest may come offloaded only if the tap can be told to produce them so.
    if (tap_can.csum) {
        features_ |= bit(net::kGuestCsum);
        if (tap_can.tso4) features_ |= bit(net::kGuestTso4);
        if (tap_can.tso6) features_ |= bit(net::kGuestTso6);
        if (tap_can.ufo) features_ |= bit(net::kGuestUfo);
    }
}

void NetDevice::read_config(uint64_t offset, std::span<uint8_t> data) const {
    std::array<uint8_t, 12> cs{};
    if (mac_) std::memcpy(cs.data(), mac_->data(), 6);
    uint16_t status = kLinkUp, pairs = 1;
    std::memcpy(cs.data() + 6, &status, 2);
    std::memcpy(cs.data() + 8, &pairs, 2);
    std::memcpy(cs.data() + 10, &mtu_, 2);
    for (size_t i = 0; i < data.size(); ++i) data[i] = offset + i < cs.size() ? cs[offset + i] : 0;
}

Result<bool> NetDevice::update(const NetworkInterfaceUpdate& update) {
    EMBER_TRY(validate_network_interface_update(update));
    const std::string who = "network interface '" + config_.iface_id + "'";
    std::optional<PendingLimiter> rx, tx;
    if (update.rx_rate_limiter) {
        auto made = PendingLimiter::make(config_.rx_rate_limiter, *update.rx_rate_limiter, clock_(),
                                         loop_, [this](uint32_t) { on_rx_limiter_timer(); });
        EMBER_TRY(made, who + ": rx_rate_limiter");
        rx.emplace(std::move(*made));
    }
    if (update.tx_rate_limiter) {
        auto made = PendingLimiter::make(config_.tx_rate_limiter, *update.tx_rate_limiter, clock_(),
                                         loop_, [this](uint32_t) { on_tx_limiter_timer(); });
        EMBER_TRY(made, who + ": tx_rate_limiter");
        tx.emplace(std::move(*made));
    }
    // Nothing has changed until here.
    if (rx) std::move(*rx).put(rx_limiter_, config_.rx_rate_limiter);
    if (tx) std::move(*tx).put(tx_limiter_, config_.tx_rate_limiter);
    // Traffic the old limits held back goes on under the new ones.
    if (!queues_.empty()) {
        receive();
        transmit();
    }
    return false;
}

Result<void> NetDevice::attach(EventLoop& loop) {
    loop_ = &loop;
    if (auto r = loop.add(tap_->fd(), EPOLLIN | EPOLLOUT | EPOLLET,
                          [this](uint32_t e) { on_tap_event(e); });
        !r)
        return r;
    if (rx_limiter_.timer_fd() >= 0)
        if (auto r = loop.add(rx_limiter_.timer_fd(), EPOLLIN,
                              [this](uint32_t) { on_rx_limiter_timer(); });
            !r)
            return r;
    if (tx_limiter_.timer_fd() >= 0)
        if (auto r = loop.add(tx_limiter_.timer_fd(), EPOLLIN,
                              [this](uint32_t) { on_tx_limiter_timer(); });
            !r)
            return r;
    return {};
}

Result<void> NetDevice::activate(uint64_t acked, std::vector<Queue> queues) {
    if (queues.size() != 2 || !queues[kRxQueue].state().ready || !queues[kTxQueue].state().ready)
        return fail("virtio-net needs its RX and TX queues ready");
    TapOffloads offloads;
    offloads.csum = acked & bit(net::kGuestCsum);
    offloads.tso4 = offloads.csum && (acked & bit(net::kGuestTso4));
    offloads.tso6 = offloads.csum && (acked & bit(net::kGuestTso6));
    offloads.ufo = offloads.csum && (acked & bit(net::kGuestUfo));
    EMBER_TRY(tap_->set_offloads(offloads));
    acked_ = acked;
    queues_ = std::move(queues);
    tap_empty_ = false;  // the look at each queue that follows reads the tap
    // A reset asked for while the device was not active had no reset() to clear it.
    reset_requested_.store(false, std::memory_order_release);
    return {};
}

std::vector<QueueState> NetDevice::queue_states() const {
    std::vector<QueueState> out;
    out.reserve(queues_.size());
    for (const auto& q : queues_) out.push_back(q.state());
    return out;
}

void NetDevice::reset() {
    queues_.clear();
    // Frames read from the tap that the guest will never see now.
    for (size_t i = rx_next_; i < rx_count_; ++i)
        if (rx_lengths_[i] != kNoFrame) ++counters_.rx_dropped;
    rx_next_ = rx_count_ = 0;
    rx_frame_charged_ = false;
    tap_empty_ = false;
    tx_blocked_ = false;
    used_added_ = {};
    acked_ = 0;
    (void)tap_->set_offloads({});
    reset_requested_.store(false, std::memory_order_release);
}

void NetDevice::process_queue(size_t index) {
    if (halted()) return;
    if (index == kTxQueue)
        transmit();
    else
        receive();  // the guest posted RX buffers
}

void NetDevice::on_tap_event(uint32_t events) {
    // Frames that came meanwhile wait in the tap: activate() is followed by a look at each queue,
    // which must then read them.
    if (events & EPOLLIN) tap_empty_ = false;
    if (halted() || tap_broken_) return;
    if (events & (EPOLLERR | EPOLLHUP)) {
        // A tap whose interface was deleted says so, and has nothing to read until EPOLLIN.
        tap_empty_ = !(events & EPOLLIN);
        warnings_.warn([&] {
            return "network interface '" + config_.iface_id +
                   "': the tap reported an error (was its interface deleted?)";
        });
    }
    if (events & EPOLLIN) receive();
    if ((events & EPOLLOUT) && tx_blocked_) {
        tx_blocked_ = false;
        transmit();
    }
}

void NetDevice::on_rx_limiter_timer() {
    rx_limiter_.on_timer();
    receive();
}

void NetDevice::on_tx_limiter_timer() {
    tx_limiter_.on_timer();
    transmit();
}

void NetDevice::tap_failed(const char* what, int err) {
    if (!tap_broken_)
        log::warn("network interface '" + config_.iface_id + "': " + what + ": " +
                  std::strerror(err) + "; the device passes no more traffic");
    tap_broken_ = true;
}

void NetDevice::notify(size_t queue) {
    if (used_added_[queue] && queues_[queue].needs_notification(mem_))
        interrupt_.raise(kInterruptUsedRing);
    used_added_[queue] = false;
}

bool NetDevice::read_batch() {
    // No more than the guest has room for, as far as its ring says (each frame takes a chain at
    // least), and at least one, so that a frame waits in ember rather than in the tap only while
    // the guest has posted nothing.
    const size_t room = std::max<size_t>(queues_[kRxQueue].available(mem_), 1);
    const size_t want = std::min({room, rx_slots_.size(), rx_batch_limit_});
    const ReadResult r = engine_->read(std::span(rx_slots_).first(want), rx_lengths_);
    rx_next_ = 0;
    rx_count_ = r.looked;
    size_t largest = 0, frames = 0;
    for (size_t i = 0; i < rx_count_; ++i) {
        if (rx_lengths_[i] == kNoFrame) continue;
        largest = std::max(largest, rx_lengths_[i]);
        ++frames;
    }
    rx_batch_limit_ = std::max<size_t>(kRxBatchBytes / std::max<size_t>(largest, 4096), 1);
    // A read of an empty tap costs io_uring about what a frame does. Where the tap ran dry, the
    // next batch asks for twice what this one found: a frame at a time then costs two reads, not
    // a whole batch's, and a batch that comes back full lets the next take the limit again.
    if (r.drained) rx_batch_limit_ = std::min(rx_batch_limit_, std::max<size_t>(2 * frames, 2));
    if (r.error) {
        // Not read again until the tap says it has a frame: a read error is not retried in a loop.
        ++counters_.rx_errors;
        warnings_.warn([&] {
            return "network interface '" + config_.iface_id +
                   "': reading the tap: " + std::strerror(-r.error);
        });
    }
    tap_empty_ = r.drained || r.error != 0;
    if (frames == 0) rx_count_ = 0;
    return frames > 0;
}

void NetDevice::receive() {
    // Not on tap_broken_: frames a batch read before the tap failed still go to the guest, once it
    // posts buffers for them. The loop reads no more from a broken tap.
    if (halted()) return;
    bool rechecked = false;  // since the last frame delivered
    while (!rx_limiter_.throttled()) {
        if (halted()) return;
        if (rx_next_ == rx_count_ && (tap_broken_ || tap_empty_ || !read_batch())) break;
        const size_t len = rx_lengths_[rx_next_];
        if (len == kNoFrame || len < kVnetHeaderSize) {
            // A buffer the batch left empty, or a runt frame, which the guest never sees.
            if (len != kNoFrame) ++counters_.rx_dropped;
            ++rx_next_;
            continue;
        }
        // A frame is charged once, however many times it waits for buffers.
        if (!rx_frame_charged_) {
            if (!rx_limiter_.consume(len - kVnetHeaderSize, clock_)) {
                ++counters_.rx_rate_limited;
                break;
            }
            rx_frame_charged_ = true;
        }
        if (!deliver(rx_slots_[rx_next_].first(len))) {
            // Ask for a kick when the guest posts buffers. If it posted some while we looked, it
            // may not kick for them, and the tap (edge-triggered) says nothing about frames it
            // already holds: look once more instead of waiting. Only once: buffers that are
            // posted but too few for this frame would be found again and again.
            if (!rechecked && queues_[kRxQueue].enable_notification(mem_)) {
                rechecked = true;
                continue;
            }
            break;
        }
        rechecked = false;
        ++rx_next_;
        rx_frame_charged_ = false;
    }
    if (halted()) return;
    // A kick is asked for above only while a frame waits for buffers. Otherwise the next frame
    // comes by the tap's EPOLLIN, and a kick for each refill of the ring would only wake this
    // thread to find the tap empty: the avail_event left stale lets the driver post without one.
    notify(kRxQueue);
    // A tap that failed here passes no more frames either way: TX chains waiting for it to be
    // writable go back to the guest now, or its TX ring would stay full.
    if (tap_broken_ && tx_blocked_) {
        tx_blocked_ = false;
        transmit();
    }
}

bool NetDevice::deliver(std::span<uint8_t> frame) {
    Queue& q = queues_[kRxQueue];
    const bool mergeable = acked_ & bit(net::kMrgRxbuf);
    rx_taken_.clear();
    rx_taken_buffers_.clear();
    // Chains the driver made unusable for RX (no device-writable buffer) are returned empty. One
    // that follows a chain already taken is returned only once the frame is placed or dropped, so
    // that rewinding the ring (not enough posted yet) rewinds over it too: no chain is then popped
    // twice or skipped.
    rx_unusable_.clear();
    auto return_unusable = [&](uint16_t head) {
        ++counters_.rx_errors;
        (void)q.add_used(mem_, head, 0);
        used_added_[kRxQueue] = true;
    };
    auto rewind = [&] {
        for (size_t i = 0; i < rx_taken_.size() + rx_unusable_.size(); ++i) q.undo_pop();
    };
    uint64_t capacity = 0;
    while (capacity < frame.size()) {
        auto popped = q.pop_into(mem_, rx_chain_);
        if (!popped || !*popped) {
            rewind();
            // Nothing more posted. If even a full ring could not hold the frame, it never will.
            if (rx_taken_.size() >= q.state().size) {
                ++counters_.rx_dropped;
                return true;
            }
            return false;
        }
        const uint16_t head = (*popped)->head;
        if (!(*popped)->chain || rx_chain_.readable_count != 0) {
            if (rx_taken_.empty())
                return_unusable(head);
            else
                rx_unusable_.push_back(head);
            continue;
        }
        const size_t first = rx_taken_buffers_.size();
        for (const auto& d : rx_chain_.descriptors) {
            rx_taken_buffers_.push_back(d);
            capacity += d.len;
        }
        rx_taken_.push_back(RxTaken{head, first, rx_taken_buffers_.size() - first});
        if (!mergeable) break;
    }
    if (capacity < frame.size()) {
        // One chain, too small, without mergeable buffers: drop the frame, keep the buffers.
        q.undo_pop();
        ++counters_.rx_dropped;
        return true;
    }
    for (uint16_t head : rx_unusable_) return_unusable(head);
    uint16_t num_buffers = static_cast<uint16_t>(rx_taken_.size());
    std::memcpy(frame.data() + kNumBuffersOffset, &num_buffers, 2);
    size_t offset = 0;
    for (const auto& t : rx_taken_) {
        uint32_t written = 0;
        for (const auto& d : std::span(rx_taken_buffers_).subspan(t.first, t.count)) {
            if (offset == frame.size()) break;
            size_t n = std::min<size_t>(d.len, frame.size() - offset);
            (void)mem_.write(d.addr, std::span<const uint8_t>(frame.data() + offset, n));
            offset += n;
            written += static_cast<uint32_t>(n);
        }
        (void)q.add_used(mem_, t.head, written);
    }
    used_added_[kRxQueue] = true;
    ++counters_.rx_packets;
    counters_.rx_bytes += frame.size() - kVnetHeaderSize;
    return true;
}

void NetDevice::transmit() {
    if (halted() || tx_blocked_) return;
    Queue& q = queues_[kTxQueue];
    tx_batch_.clear();
    tx_iov_.clear();
    while (!tx_limiter_.throttled()) {
        if (halted()) break;
        auto popped = q.pop_into(mem_, tx_chain_);
        if (!popped) {
            warnings_.warn(
                [&] { return "virtio-net '" + config_.iface_id + "': " + popped.error().message; });
            break;
        }
        if (!*popped) {
            if (q.enable_notification(mem_)) continue;
            break;
        }
        const uint16_t head = (*popped)->head;
        const size_t first_iov = tx_iov_.size();
        uint64_t len = 0;
        bool valid = (*popped)->chain && tx_chain_.writable().empty();
        if (valid) {
            for (const auto& d : tx_chain_.descriptors) {
                auto host = mem_.slice(d.addr, d.len);  // checked by the chain walk
                tx_iov_.push_back(iovec{host->data(), host->size()});
                len += d.len;
            }
            valid = len >= kVnetHeaderSize && len <= kMaxFrame;
        }
        if (!valid || tap_broken_) {
            // A broken tap still gives the guest its buffers back, or its TX ring would fill and
            // its driver stall. The frames popped before this chain are written first: a chain the
            // tap cannot take yet goes back with undo_pop(), which only rewinds over the last.
            tx_iov_.resize(first_iov);
            write_batch();
            if (halted()) break;
            if (tx_blocked_) {
                q.undo_pop();
                break;
            }
            ++counters_.tx_dropped;
            (void)q.add_used(mem_, head, 0);
            used_added_[kTxQueue] = true;
            continue;
        }
        if (!tx_limiter_.consume(len - kVnetHeaderSize, clock_)) {
            tx_iov_.resize(first_iov);
            ++counters_.tx_rate_limited;
            q.undo_pop();
            break;
        }
        tx_batch_.push_back(TxFrame{head, len, first_iov, tx_iov_.size() - first_iov});
        if (tx_batch_.size() == kTxBatch) {
            write_batch();
            if (tx_blocked_) break;
        }
    }
    write_batch();
    if (halted()) return;
    notify(kTxQueue);
}

void NetDevice::write_batch() {
    if (tx_batch_.empty()) return;
    if (halted()) {
        // The driver has reset the device since these were popped: they are not sent, and their
        // chains are no longer its ring's to give back.
        tx_batch_.clear();
        tx_iov_.clear();
        return;
    }
    Queue& q = queues_[kTxQueue];
    tx_frames_.clear();
    for (const auto& f : tx_batch_)
        tx_frames_.emplace_back(tx_iov_.data() + f.first_iov, f.iov_count);
    tx_results_.assign(tx_batch_.size(), 0);
    const int engine_error = engine_->write(tx_frames_, tx_results_);
    if (halted()) {
        // The driver reset the device while these went: counted, but not given back.
        for (size_t i = 0; i < tx_batch_.size(); ++i) {
            if (tx_results_[i] != 0) continue;
            ++counters_.tx_packets;
            counters_.tx_bytes += tx_batch_[i].len - kVnetHeaderSize;
        }
        tx_batch_.clear();
        tx_iov_.clear();
        return;
    }
    if (engine_error) tap_failed("writing the tap", -engine_error);
    auto not_yet = [](int r) { return r == -EAGAIN || r == -ECANCELED; };
    // Frames the tap had no room for yet go back to the ring, to be sent when it is writable: the
    // ones after the last frame that went or was refused, which undo_pop() rewinds over
    // (net_engine.h). A broken engine sends nothing more: they are given back unsent.
    size_t keep = tx_batch_.size();
    while (!engine_error && keep > 0 && not_yet(tx_results_[keep - 1])) --keep;
    int refused = 0, refusals = 0;
    for (size_t i = 0; i < keep; ++i) {
        const int r = tx_results_[i];
        if (r == 0) {
            ++counters_.tx_packets;
            counters_.tx_bytes += tx_batch_[i].len - kVnetHeaderSize;
        } else if (not_yet(r)) {
            ++counters_.tx_dropped;  // before one that went, or not sent by a broken engine
        } else {
            // Refused for itself (a runt, a GSO header the tap will not take, its link down):
            // dropped and counted, as the network may drop any frame; the rest go on.
            ++counters_.tx_errors;
            refused = r;
            ++refusals;
        }
        (void)q.add_used(mem_, tx_batch_[i].head, 0);
        used_added_[kTxQueue] = true;
    }
    if (refusals > 0)
        warnings_.warn([&] {
            return "network interface '" + config_.iface_id + "': the tap refused " +
                   std::to_string(refusals) + (refusals == 1 ? " frame" : " frames") +
                   " from the guest (" + std::strerror(-refused) + "); dropped";
        });
    if (keep < tx_batch_.size()) {
        for (size_t i = keep; i < tx_batch_.size(); ++i) {
            q.undo_pop();
            // Charged when popped; charged again when they go.
            tx_limiter_.give_back(tx_batch_[i].len - kVnetHeaderSize);
        }
        tx_blocked_ = true;
    }
    tx_batch_.clear();
    tx_iov_.clear();
}

}  // namespace ember::virtio
