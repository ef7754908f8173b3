// The virtio-net device: an RX and a TX queue over a tap, whose frames an engine (net_engine.h)
// moves: io_uring by default (Async), or a system call per frame (Sync).
//
// TX: a kick drains the whole available ring, frames (vnet header included) handed to the engine
// in batches straight from guest memory. A full tap stops TX until it is writable. A frame the tap
// refuses (a runt, a GSO header it will not take, its link down) is dropped and counted, and the
// rest go on: a guest's bad frame or a link set down for a while costs only those frames.
// RX: frames are read from the tap in batches no larger than the buffers the guest has posted
// (at least one); otherwise they wait in the tap (the kernel's queue, bounded by its txqueuelen).
// What a batch read and the guest has no room for yet waits in ember, at most a batch; a reset or
// a snapshot drops those (counted in rx_dropped), as the network may drop any frame. A frame is
// copied into one chain, or with VIRTIO_NET_F_MRG_RXBUF into as many as it needs; one that cannot
// fit in what the guest could ever post is dropped and counted, never written past the buffers.
// The tap's EPOLLIN brings frames in; the guest is asked to kick only while a frame waits for its
// buffers, and a read that found the tap empty is not repeated until EPOLLIN comes again.
// Everything here runs on the VMM thread, except reset_requested(): from the driver's reset until
// reset() runs, no frame goes into its buffers and no chain or interrupt goes back to it.
#pragma once

#include <linux/virtio_ids.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "core/base/log_limit.h"
#include "core/base/mapping.h"
#include "core/config/vm_config.h"
#include "core/event_loop/event_loop.h"
#include "virtio/device.h"
#include "virtio/net/net_engine.h"
#include "virtio/net/tap.h"
#include "virtio/rate_limiter/rate_limiter.h"

namespace ember::virtio {

struct NetCounters {
    uint64_t rx_packets = 0, rx_bytes = 0, rx_dropped = 0, rx_errors = 0;
    uint64_t tx_packets = 0, tx_bytes = 0, tx_dropped = 0, tx_errors = 0;
    uint64_t rx_rate_limited = 0, tx_rate_limited = 0;
};

namespace net {
inline constexpr uint32_t kCsum = 0, kGuestCsum = 1, kMtu = 3, kMac = 5, kGuestTso4 = 7,
                          kGuestTso6 = 8, kGuestUfo = 10, kHostTso4 = 11, kHostTso6 = 12,
                          kHostUfo = 14, kMrgRxbuf = 15, kStatus = 16;
}  // namespace net

class NetDevice : public UpdatableDevice<NetworkInterfaceUpdate> {
  public:
    static constexpr size_t kRxQueue = 0;
    static constexpr size_t kTxQueue = 1;
    // Largest frame a tap hands over: vnet header plus a 64 KiB GSO super-frame plus its headers.
    static constexpr size_t kMaxFrame = kVnetHeaderSize + 65535 + 14 + 4;

    // On the tap `config` names.
    static Result<std::unique_ptr<NetDevice>> create(const NetworkInterfaceConfig& config,
                                                     const GuestMemory& mem, Interrupt& interrupt,
                                                     TimeSource clock = Clock::now);
    // On a tap already open (tests and fuzzing: Tap::from_socket).
    static Result<std::unique_ptr<NetDevice>> create(const NetworkInterfaceConfig& config,
                                                     const GuestMemory& mem, Interrupt& interrupt,
                                                     Tap tap, TimeSource clock = Clock::now);

    uint32_t device_type() const override { return VIRTIO_ID_NET; }
    uint64_t offered_features() const override { return features_; }
    size_t queue_count() const override { return 2; }
    void read_config(uint64_t offset, std::span<uint8_t> data) const override;
    Result<void> activate(uint64_t acked_features, std::vector<Queue> queues) override;
    void process_queue(size_t index) override;
    void reset() override;
    void reset_requested() override { reset_requested_.store(true, std::memory_order_release); }
    std::vector<QueueState> queue_states() const override;

    Result<void> attach(EventLoop& loop) override;
    // PATCH /network-interfaces after boot, on the VMM thread: new rate limits, in force at once;
    // nothing the driver reads changes (false). On error nothing changed.
    Result<bool> update(const NetworkInterfaceUpdate& update) override;
    // Its rate limiters' buckets, RX then TX (net_persist.cc).
    std::vector<uint8_t> save_state() const override;
    Result<void> restore_state(std::span<const uint8_t> state) override;
    std::string_view kind() const override { return "net"; }
    std::string_view metrics_kind() const override { return kind(); }
    std::vector<metrics::Field> metrics() const override;  // net_metrics.cc
    // The tap's readiness (EPOLLIN, EPOLLOUT, errors) and the rate limiters' timers.
    void on_tap_event(uint32_t events);
    void on_rx_limiter_timer();
    void on_tx_limiter_timer();

    const NetCounters& counters() const { return counters_; }
    const std::string& id() const override { return config_.iface_id; }
    const NetworkInterfaceConfig& config() const { return config_; }
    int tap_fd() const { return tap_->fd(); }

    // System calls its engine made, for perf/net.
    uint64_t engine_system_calls() const { return engine_->system_calls(); }

    // `config.io_engine` says which engine `engine` is.
    NetDevice(NetworkInterfaceConfig config, const GuestMemory& mem, Interrupt& interrupt,
              std::unique_ptr<Tap> tap, std::unique_ptr<NetEngine> engine, Mapping rx_buffers,
              std::optional<std::array<uint8_t, 6>> mac, uint16_t mtu, RateLimiter rx_limiter,
              RateLimiter tx_limiter, TimeSource clock);

  private:
    void receive();
    // Reads a batch of frames from the tap into the RX buffers; false when it had none (or failed).
    bool read_batch();
    // Puts `frame` into RX buffers; false when the guest has not posted enough yet.
    bool deliver(std::span<uint8_t> frame);
    void transmit();
    // Writes the frames popped into tx_batch_, in order, and gives their chains back.
    void write_batch();
    void notify(size_t queue);
    void tap_failed(const char* what, int err);
    // No queue, or the driver has reset the device and reset() has not run yet: nothing may touch
    // the rings or the buffers, which the driver may already be using for something else.
    bool halted() const {
        return queues_.empty() || reset_requested_.load(std::memory_order_acquire);
    }

    NetworkInterfaceConfig config_;
    const GuestMemory& mem_;
    Interrupt& interrupt_;
    std::unique_ptr<Tap> tap_;  // the engine holds a reference: it stays where it is
    // The RX buffers outlive the engine, which may still have reads into them when it ends.
    Mapping rx_buffers_;
    std::unique_ptr<NetEngine> engine_;
    std::optional<std::array<uint8_t, 6>> mac_;
    uint16_t mtu_;
    uint64_t features_ = 0;
    uint64_t acked_ = 0;
    RateLimiter rx_limiter_;
    RateLimiter tx_limiter_;
    TimeSource clock_;
    EventLoop* loop_ = nullptr;

    std::vector<Queue> queues_;
    // The driver wrote status 0 (on its vCPU thread) and reset() has not run yet.
    std::atomic<bool> reset_requested_{false};
    std::array<bool, 2> used_added_{};
    // A batch of frames read from the tap into rx_buffers_; [rx_next_, rx_count_) wait for RX
    // buffers, and a length of kNoFrame is a buffer the batch left empty.
    std::vector<std::span<uint8_t>> rx_slots_;
    std::vector<size_t> rx_lengths_;
    size_t rx_next_ = 0, rx_count_ = 0;
    // Frames the next batch read may take (net_device.cc, kRxBatchBytes): at first, as many as
    // fit if each is a 64 KiB one.
    size_t rx_batch_limit_ = 4;
    bool rx_frame_charged_ = false;  // rx_next_'s frame has passed the RX rate limiter
    // deliver()'s, kept for their capacity (nothing allocated per frame): the chain popped last,
    // the chains a frame takes and their buffers, and unusable chains to give back after it.
    struct RxTaken {
        uint16_t head;
        size_t first, count;  // in rx_taken_buffers_
    };
    DescriptorChain rx_chain_;
    std::vector<RxTaken> rx_taken_;
    std::vector<Descriptor> rx_taken_buffers_;
    std::vector<uint16_t> rx_unusable_;
    // The last read found the tap empty and no EPOLLIN has come since: a read would find nothing.
    bool tap_empty_ = false;
    // Frames popped from the TX ring for one engine call: their chains and their iovecs.
    struct TxFrame {
        uint16_t head;
        uint64_t len;
        size_t first_iov, iov_count;
    };
    std::vector<TxFrame> tx_batch_;
    DescriptorChain tx_chain_;  // the chain popped last, kept for its capacity
    std::vector<iovec> tx_iov_;
    std::vector<std::span<const iovec>> tx_frames_;
    std::vector<int> tx_results_;
    bool tx_blocked_ = false;  // the tap said EAGAIN: wait for EPOLLOUT
    bool tap_broken_ = false;  // the engine failed as a whole: no more traffic
    NetCounters counters_;
    // Lines the guest can cause as often as it likes (bad frames, a broken ring), and the tap's
    // errors, which a link set down and up repeats.
    log::LineLimit warnings_;
};

// "aa:bb:cc:dd:ee:ff" into bytes (the config layer has validated it).
std::array<uint8_t, 6> parse_mac(const std::string& mac);

}  // namespace ember::virtio
