// The virtio-blk device: one request queue of up to 256 entries over a raw image file.
//
// Request path, all on the VMM thread: process_queue() pops each available chain, parses it,
// asks the rate limiter, and pushes reads, writes and flushes to the engine (guest buffers are
// handed to the kernel as iovecs, no bounce copy), submitting once per notification. Completions
// (the engine's eventfd) write the status byte, return the chain on the used ring, and interrupt
// the driver if it asked to be.
#pragma once

#include <linux/virtio_ids.h>

#include <array>
#include <atomic>
#include <memory>
#include <optional>
#include <vector>

#include "core/base/log_limit.h"
#include "core/base/unique_fd.h"
#include "core/config/vm_config.h"
#include "core/event_loop/event_loop.h"
#include "virtio/block/io_engine.h"
#include "virtio/block/request.h"
#include "virtio/device.h"
#include "virtio/rate_limiter/rate_limiter.h"

namespace ember::virtio {

struct BlockCounters {
    uint64_t read_ops = 0, write_ops = 0, flush_ops = 0, get_id_ops = 0;
    uint64_t read_bytes = 0, write_bytes = 0;
    uint64_t invalid_requests = 0;  // malformed chains or requests the spec forbids
    uint64_t io_errors = 0;         // the host's I/O failed
    uint64_t rate_limited = 0;
};

class BlockDevice : public UpdatableDevice<DriveUpdate> {
  public:
    struct Options {
        bool direct_io = false;  // O_DIRECT on the image (benchmarks)
        TimeSource clock = Clock::now;
    };

    static Result<std::unique_ptr<BlockDevice>> create(const DriveConfig& config,
                                                       const GuestMemory& mem, Interrupt& interrupt,
                                                       const Options& options);
    ~BlockDevice() override;

    uint32_t device_type() const override { return VIRTIO_ID_BLOCK; }
    uint64_t offered_features() const override { return features_; }
    size_t queue_count() const override { return 1; }
    void read_config(uint64_t offset, std::span<uint8_t> data) const override;
    Result<void> activate(uint64_t acked_features, std::vector<Queue> queues) override;
    void process_queue(size_t index) override;
    void reset() override;
    void reset_requested() override { reset_requested_.store(true, std::memory_order_release); }
    std::vector<QueueState> queue_states() const override;

    // Engine completions are ready (its completion fd fired), or the rate limiter's timer fired.
    void process_completions();
    void on_rate_limiter_timer();
    // Waits for every request in flight and completes it into the guest (snapshots).
    Result<void> quiesce() override;
    // Waits kIoEndWait at most; what the image has not answered by then stays with the kernel.
    bool end() override;
    // Its rate limiter's buckets (block_persist.cc).
    std::vector<uint8_t> save_state() const override;
    Result<void> restore_state(std::span<const uint8_t> state) override;
    Result<void> attach(EventLoop& loop) override;
    // PATCH /drives after boot, on the VMM thread: a new image (in-flight requests finish on the
    // old one first) and/or new rate limits. True when the capacity in the config space may have
    // changed. On error nothing changed.
    Result<bool> update(const DriveUpdate& update) override;
    std::string_view kind() const override { return "block"; }
    std::string_view metrics_kind() const override { return kind(); }
    std::vector<metrics::Field> metrics() const override;  // block_metrics.cc

    // Signalled when the engine has completions (watch it edge-triggered); -1 for the synchronous
    // engine.
    int completion_fd() const { return engine_->completion_fd(); }
    uint64_t capacity_sectors() const { return capacity_sectors_.load(std::memory_order_relaxed); }
    const BlockCounters& counters() const { return counters_; }
    const std::string& id() const override { return config_.drive_id; }
    // As the drive runs: io_engine is Sync where Async fell back.
    const DriveConfig& config() const { return config_; }

    // Constructed through create().
    BlockDevice(DriveConfig config, const GuestMemory& mem, Interrupt& interrupt, UniqueFd image,
                uint64_t capacity_sectors, std::unique_ptr<IoEngine> engine, RateLimiter limiter,
                TimeSource clock, std::array<uint8_t, 20> serial);

  private:
    struct InFlight {
        RequestType type;
        uint64_t status_addr;
        uint64_t expected;
        std::vector<iovec> iov;
        std::vector<Descriptor> guest;
        bool orphaned = false;  // left in flight by a reset: its completion is dropped
    };

    // Finishes a request: status byte, used ring entry (`written` bytes incl. the status).
    void complete(uint16_t head, uint64_t status_addr, uint8_t status, uint32_t written);
    void complete_io(const IoCompletion& c);
    void notify_if_needed();

    DriveConfig config_;
    const GuestMemory& mem_;
    Interrupt& interrupt_;
    UniqueFd image_;
    std::atomic<uint64_t> capacity_sectors_;  // read by vCPU threads through the config space
    bool direct_io_ = false;
    bool ended_ = false;
    EventLoop* loop_ = nullptr;
    uint64_t features_;
    std::unique_ptr<IoEngine> engine_;
    RateLimiter limiter_;
    TimeSource clock_;
    std::array<uint8_t, 20> serial_;

    std::optional<Queue> queue_;
    std::vector<std::optional<InFlight>> in_flight_;  // by descriptor head
    bool used_added_ = false;
    bool waiting_for_engine_ = false;
    // The driver wrote status 0 and reset() has not run yet: completions are dropped as orphans'.
    std::atomic<bool> reset_requested_{false};
    std::vector<IoCompletion> completions_;
    BlockCounters counters_;
    // Lines the guest can cause as often as it likes: a broken ring, the image's errors for each
    // request, a reset while the image holds requests.
    log::LineLimit warnings_;
};

}  // namespace ember::virtio
