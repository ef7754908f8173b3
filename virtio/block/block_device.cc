#include "virtio/block/block_device.h"

#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "core/base/log.h"
#include "core/base/open_file.h"

namespace ember::virtio {
namespace {

// How long a snapshot or a new image waits for the requests in flight: an image that stopped
// answering fails the call, by name, and ember goes on serving.
constexpr std::chrono::seconds kQuiesceWait{5};
constexpr uint32_t kSegMax = kMaxQueueSize - 2;  // header and status take two descriptors
// The most requests a drive hands to io_uring at once; the rest wait in the queue. A request the
// page cache cannot serve holds a kernel worker thread until the image answers, so this bounds the
// threads a drive whose image stopped answering keeps (the guests' drivers rarely go deeper).
constexpr unsigned kMaxRequestsInFlight = 64;

struct ConfigSpace {
    uint64_t capacity;
    uint32_t size_max;
    uint32_t seg_max;
    uint16_t cylinders;
    uint8_t heads;
    uint8_t sectors;
    uint32_t blk_size;
} __attribute__((packed));

// Firecracker's disk id: device, rdev and inode of the image, so it stays stable across restarts.
std::array<uint8_t, 20> disk_serial(int fd) {
    std::array<uint8_t, 20> serial{};
    struct stat st{};
    if (::fstat(fd, &st) == 0) {
        std::string id =
            std::to_string(st.st_dev) + std::to_string(st.st_rdev) + std::to_string(st.st_ino);
        std::memcpy(serial.data(), id.data(), std::min(id.size(), serial.size()));
    }
    return serial;
}

struct OpenedImage {
    UniqueFd fd;
    uint64_t sectors;
};

Result<OpenedImage> open_image(const DriveConfig& config, bool direct_io) {
    const std::string who = "drive '" + config.drive_id + "': " + config.path_on_host;
    int flags = (config.is_read_only ? O_RDONLY : O_RDWR) | (direct_io ? O_DIRECT : 0);
    auto opened = open_file(config.path_on_host, flags, FileKinds::RegularOrBlockDevice);
    // Firecracker's words, then the path and which drive.
    if (!opened)
        return fail(opened.error().message + " " + config.path_on_host + " (drive '" +
                    config.drive_id + "')");
    UniqueFd image = std::move(*opened);
    struct stat st{};
    if (::fstat(image.get(), &st) < 0) return fail_errno(who);
    uint64_t size = static_cast<uint64_t>(st.st_size);
    if (S_ISBLK(st.st_mode)) {
        off_t end = ::lseek(image.get(), 0, SEEK_END);
        if (end < 0) return fail_errno(who);
        size = static_cast<uint64_t>(end);
    }
    if (size % kSectorSize != 0)
        return fail(who + ": size " + std::to_string(size) + " bytes is not a multiple of 512");
    return OpenedImage{std::move(image), size / kSectorSize};
}

}  // namespace

Result<std::unique_ptr<BlockDevice>> BlockDevice::create(const DriveConfig& config,
                                                         const GuestMemory& mem,
                                                         Interrupt& interrupt,
                                                         const Options& options) {
    const std::string who = "drive '" + config.drive_id + "': " + config.path_on_host;
    auto opened = open_image(config, options.direct_io);
    EMBER_TRY(opened);
    UniqueFd image = std::move(opened->fd);
    const uint64_t size = opened->sectors * kSectorSize;

    std::unique_ptr<IoEngine> engine;
    DriveConfig effective = config;
    if (config.io_engine == IoEngineType::Sync) {
        engine = make_sync_engine(image.get());
    } else {
        auto uring = make_uring_engine(image.get(), kMaxRequestsInFlight);
        if (uring) {
            engine = std::move(*uring);
        } else if (uring.error().kind == ErrorKind::Unavailable) {
            // An old kernel, io_uring_disabled, or a container's seccomp profile: the drive still
            // works, synchronously, and says so.
            log::warn("drive '" + config.drive_id + "': io_uring is unavailable (" +
                      uring.error().message + "): using io_engine Sync");
            engine = make_sync_engine(image.get());
            effective.io_engine = IoEngineType::Sync;
        } else {
            return std::unexpected(std::move(uring.error()).wrap(who + ": io_engine Async"));
        }
    }
    auto limiter = RateLimiter::create(config.rate_limiter, options.clock());
    EMBER_TRY(limiter, who);
    auto serial = disk_serial(image.get());
    auto device = std::make_unique<BlockDevice>(effective, mem, interrupt, std::move(image),
                                                size / kSectorSize, std::move(engine),
                                                std::move(*limiter), options.clock, serial);
    device->direct_io_ = options.direct_io;
    return device;
}

BlockDevice::BlockDevice(DriveConfig config, const GuestMemory& mem, Interrupt& interrupt,
                         UniqueFd image, uint64_t capacity_sectors,
                         std::unique_ptr<IoEngine> engine, RateLimiter limiter, TimeSource clock,
                         std::array<uint8_t, 20> serial)
    : config_(std::move(config)),
      mem_(mem),
      interrupt_(interrupt),
      image_(std::move(image)),
      capacity_sectors_(capacity_sectors),
      engine_(std::move(engine)),
      limiter_(std::move(limiter)),
      clock_(std::move(clock)),
      serial_(serial),
      in_flight_(kMaxQueueSize) {
    features_ = kFVersion1 | (1ull << kRingFEventIdx) | (1ull << kRingFIndirectDesc) |
                (1ull << VIRTIO_BLK_F_SEG_MAX) | (1ull << VIRTIO_BLK_F_BLK_SIZE);
    if (config_.is_read_only) features_ |= 1ull << VIRTIO_BLK_F_RO;
    if (config_.cache_type == CacheType::Writeback) features_ |= 1ull << VIRTIO_BLK_F_FLUSH;
}

// An owner that did not call end() (a test, a benchmark) gets the same bounded wait, but cannot
// tell whether requests were left that may still write into its memory: Vmm calls end() itself.
BlockDevice::~BlockDevice() {
    if (!ended_) end();
}

bool BlockDevice::end() {
    // As reset(), but bounded: ember's exit waits for no drive (its guest never saw these
    // requests complete, as after a power cut), and no guest runs after this.
    ended_ = true;
    completions_.clear();
    if (engine_->drain_for(completions_, kIoEndWait)) return true;
    const size_t n = engine_->in_flight();
    log::warn("drive '" + config_.drive_id + "': its image left " + std::to_string(n) +
              (n == 1 ? " request" : " requests") + " unanswered for " +
              std::to_string(kIoEndWait.count()) + " ms; the device ends without them");
    // Not closed here: on FUSE, close() sends a FLUSH that waits, uninterruptibly, for the
    // image (and for the inode lock a held write keeps). ember's exit closes it.
    (void)image_.release();
    return false;
}

Result<bool> BlockDevice::update(const DriveUpdate& update) {
    EMBER_TRY(validate_drive_update(update));
    // Everything that can fail comes first, so a refused update changes nothing.
    std::optional<OpenedImage> opened;
    if (update.path_on_host) {
        DriveConfig next = config_;
        next.path_on_host = *update.path_on_host;
        auto o = open_image(next, direct_io_);
        EMBER_TRY(o, "Error manipulating the backing file");
        opened = std::move(*o);
    }
    std::optional<PendingLimiter> limiter;
    if (update.rate_limiter) {
        auto made = PendingLimiter::make(config_.rate_limiter, *update.rate_limiter, clock_(),
                                         loop_, [this](uint32_t) { on_rate_limiter_timer(); });
        EMBER_TRY(made, "drive '" + config_.drive_id + "'");
        limiter.emplace(std::move(*made));
    }
    if (opened) {
        // What the guest asked of the old image completes on it; later requests go to the new.
        EMBER_TRY(quiesce(), "the new image is not taken");
        EMBER_TRY(engine_->replace_file(opened->fd.get()), "drive '" + config_.drive_id + "'");
        image_ = std::move(opened->fd);
        capacity_sectors_.store(opened->sectors, std::memory_order_relaxed);
        serial_ = disk_serial(image_.get());
        config_.path_on_host = *update.path_on_host;
    }
    if (limiter) std::move(*limiter).put(limiter_, config_.rate_limiter);
    // Requests held back by the old limits, or waiting while the image changed, go on now.
    process_queue(0);
    return opened.has_value();
}

Result<void> BlockDevice::attach(EventLoop& loop) {
    loop_ = &loop;
    if (engine_->completion_fd() >= 0) {
        if (auto r = loop.add(engine_->completion_fd(), EPOLLIN | EPOLLET,
                              [this](uint32_t) { process_completions(); });
            !r)
            return r;
    }
    if (limiter_.timer_fd() >= 0) {
        if (auto r = loop.add(limiter_.timer_fd(), EPOLLIN,
                              [this](uint32_t) { on_rate_limiter_timer(); });
            !r)
            return r;
    }
    return {};
}

void BlockDevice::read_config(uint64_t offset, std::span<uint8_t> data) const {
    // Every byte is guest-visible: all of them start at zero.
    ConfigSpace cs;
    std::memset(&cs, 0, sizeof cs);
    cs.capacity = capacity_sectors_.load(std::memory_order_relaxed);
    cs.seg_max = kSegMax;
    cs.blk_size = kSectorSize;
    const auto* bytes = reinterpret_cast<const uint8_t*>(&cs);
    for (size_t i = 0; i < data.size(); ++i)
        data[i] = offset + i < sizeof cs ? bytes[offset + i] : 0;
}

Result<void> BlockDevice::activate(uint64_t, std::vector<Queue> queues) {
    if (queues.size() != 1 || !queues[0].state().ready)
        return fail("virtio-blk needs its request queue ready");
    queue_ = queues[0];
    // A reset asked for while the device was not active had no reset() to clear it.
    reset_requested_.store(false, std::memory_order_release);
    return {};
}

std::vector<QueueState> BlockDevice::queue_states() const {
    if (!queue_) return {};
    return {queue_->state()};
}

void BlockDevice::complete(uint16_t head, uint64_t status_addr, uint8_t status, uint32_t written) {
    (void)mem_.write_obj(status_addr, status);
    if (auto r = queue_->add_used(mem_, head, written); !r)
        warnings_.warn([&] { return "virtio-blk: " + r.error().message; });
    used_added_ = true;
}

void BlockDevice::notify_if_needed() {
    if (used_added_ && queue_->needs_notification(mem_)) interrupt_.raise(kInterruptUsedRing);
    used_added_ = false;
}

void BlockDevice::process_queue(size_t) {
    if (!queue_ || reset_requested_.load(std::memory_order_acquire)) return;
    while (!waiting_for_engine_ && !limiter_.throttled()) {
        auto popped = queue_->pop(mem_);
        if (!popped) {
            warnings_.warn([&] {
                return "virtio-blk '" + config_.drive_id + "': " + popped.error().message +
                       "; the queue is stopped until the driver resets the device";
            });
            ++counters_.invalid_requests;
            break;
        }
        if (!*popped) {
            if (queue_->enable_notification(mem_)) continue;
            break;
        }
        auto& [head, chain] = **popped;
        if (!chain) {
            ++counters_.invalid_requests;
            (void)queue_->add_used(mem_, head, 0);  // nothing to write a status into; give it back
            used_added_ = true;
            continue;
        }
        auto req = parse_request(*chain, mem_, capacity_sectors_);
        if (!req) {
            ++counters_.invalid_requests;
            if (req.error().status_addr)
                complete(head, *req.error().status_addr, req.error().status, 1);
            else
                (void)queue_->add_used(mem_, head, 0), used_added_ = true;
            continue;
        }
        if (!limiter_.consume(req->data_len, clock_)) {
            ++counters_.rate_limited;
            queue_->undo_pop();
            break;
        }
        switch (req->type) {
            case RequestType::GetId: {
                ++counters_.get_id_ops;
                uint64_t left = serial_.size(), done = 0;
                for (const auto& d : req->data_guest) mem_.mark_dirty(d.addr, d.len);
                for (const auto& v : req->data) {
                    uint64_t n = std::min<uint64_t>(left, v.iov_len);
                    std::memcpy(v.iov_base, serial_.data() + done, n);
                    done += n;
                    left -= n;
                }
                complete(head, req->status_addr, VIRTIO_BLK_S_OK, static_cast<uint32_t>(done + 1));
                continue;
            }
            case RequestType::Out:
                if (config_.is_read_only) {
                    ++counters_.invalid_requests;
                    complete(head, req->status_addr, VIRTIO_BLK_S_IOERR, 1);
                    continue;
                }
                break;
            case RequestType::Flush:
                if (config_.cache_type != CacheType::Writeback) {
                    // Unsafe: the guest's writes are in the host page cache; nothing to wait for.
                    ++counters_.flush_ops;
                    complete(head, req->status_addr, VIRTIO_BLK_S_OK, 1);
                    continue;
                }
                break;
            default: break;
        }
        auto& slot = in_flight_[head];
        if (slot) {
            // The driver reused a head still in flight, against the spec: the duplicate is
            // refused, but returned, so every chain made available is used exactly once.
            ++counters_.invalid_requests;
            complete(head, req->status_addr, VIRTIO_BLK_S_IOERR, 1);
            continue;
        }
        slot = InFlight{req->type, req->status_addr, req->data_len, std::move(req->data),
                        std::move(req->data_guest)};
        IoOp op{req->type == RequestType::In    ? IoOp::Kind::Read
                : req->type == RequestType::Out ? IoOp::Kind::Write
                                                : IoOp::Kind::Flush,
                req->sector * kSectorSize, slot->iov, head};
        if (!engine_->push(op)) {
            slot.reset();
            limiter_.give_back(req->data_len);  // charged again when it is popped again
            queue_->undo_pop();
            waiting_for_engine_ = true;
            break;
        }
    }
    engine_->submit();
    // The synchronous engine has finished already, as has what the ring's did at once; the rest
    // of the ring's completions arrive by eventfd.
    if (engine_->completes_in_push()) process_completions();
    notify_if_needed();
}

void BlockDevice::complete_io(const IoCompletion& c) {
    if (c.tag >= in_flight_.size() || !in_flight_[c.tag]) return;
    InFlight req = std::move(*in_flight_[c.tag]);
    in_flight_[c.tag].reset();
    if (req.orphaned || !queue_ || reset_requested_.load(std::memory_order_acquire)) {
        // The kernel wrote the guest's buffers all the same (Diff snapshots must see them).
        if (req.type == RequestType::In)
            for (const auto& d : req.guest) mem_.mark_dirty(d.addr, d.len);
        return;
    }
    bool ok = c.result >= 0 && static_cast<uint64_t>(c.result) == req.expected;
    if (!ok) {
        ++counters_.io_errors;
        warnings_.warn([&] {
            return "virtio-blk '" + config_.drive_id + "': " +
                   (c.result < 0 ? std::string(std::strerror(static_cast<int>(-c.result)))
                                 : "short transfer of " + std::to_string(c.result) + " bytes");
        });
    }
    uint32_t written = 1;
    switch (req.type) {
        case RequestType::In:
            // The kernel wrote the guest's buffers, not GuestMemory: note them for Diff snapshots.
            for (const auto& d : req.guest) mem_.mark_dirty(d.addr, d.len);
            ++counters_.read_ops;
            if (ok)
                counters_.read_bytes += req.expected,
                    written += static_cast<uint32_t>(req.expected);
            break;
        case RequestType::Out:
            ++counters_.write_ops;
            if (ok) counters_.write_bytes += req.expected;
            break;
        default: ++counters_.flush_ops; break;
    }
    complete(static_cast<uint16_t>(c.tag), req.status_addr,
             ok ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR, written);
}

void BlockDevice::process_completions() {
    // Also with no queue: a reset's orphans end so (complete_io drops them).
    completions_.clear();
    engine_->reap(completions_);
    for (const auto& c : completions_) complete_io(c);
    notify_if_needed();
    if (waiting_for_engine_ && !completions_.empty()) {
        waiting_for_engine_ = false;
        process_queue(0);
    }
}

Result<void> BlockDevice::quiesce() {
    if (!queue_ && engine_->in_flight() == 0) return {};
    const auto deadline = std::chrono::steady_clock::now() + kQuiesceWait;
    bool all = false;
    for (;;) {
        completions_.clear();
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        all = engine_->drain_for(completions_, std::max(left, std::chrono::milliseconds(0)));
        for (const auto& c : completions_) complete_io(c);
        notify_if_needed();
        // Requests the engine could not take yet wait in the queue for a completion, and the
        // completions were reaped here: take them now, and wait for them too, or nothing would
        // ever take them.
        if (!all || !waiting_for_engine_) break;
        waiting_for_engine_ = false;
        process_queue(0);
    }
    if (all) return {};
    // The rest complete later, as any request does.
    const size_t n = engine_->in_flight();
    return fail("drive '" + config_.drive_id + "': its image has left " + std::to_string(n) +
                (n == 1 ? " request" : " requests") + " unanswered for " +
                std::to_string(kQuiesceWait.count()) + " s");
}

void BlockDevice::on_rate_limiter_timer() {
    limiter_.on_timer();
    process_queue(0);
}

void BlockDevice::reset() {
    // No write into guest memory may follow a reset: wait out the I/O, drop its results. The wait
    // is bounded, as a snapshot's is: a guest resetting a drive whose image stopped answering must
    // not stop the VMM thread. What is left stays in flight, orphaned: its completion is dropped,
    // its descriptor head refused until then, and a read among it still fills its buffer when the
    // image answers, as a DMA a device cannot call back would. While an earlier reset's requests
    // are still unanswered the image is known to be stalled, and a reset does not wait again: a
    // guest resetting in a loop would hold the thread 5 s of every 5.
    bool stalled = false;
    for (auto& slot : in_flight_) {
        if (!slot) continue;
        stalled |= slot->orphaned;
        slot->orphaned = true;
    }
    completions_.clear();
    const auto wait = stalled ? std::chrono::milliseconds(0) : kQuiesceWait;
    const bool all = engine_->drain_for(completions_, wait);
    for (const auto& c : completions_) complete_io(c);
    if (!all && !stalled) {
        const size_t n = engine_->in_flight();
        warnings_.warn([&] {
            return "drive '" + config_.drive_id + "': reset with " + std::to_string(n) +
                   (n == 1 ? " request" : " requests") + " its image left unanswered for " +
                   std::to_string(kQuiesceWait.count()) + " s; they end when it answers";
        });
    }
    queue_.reset();
    waiting_for_engine_ = false;
    used_added_ = false;
    reset_requested_.store(false, std::memory_order_release);
}

}  // namespace ember::virtio
