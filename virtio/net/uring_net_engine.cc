#include <liburing.h>
#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <string_view>
#include <vector>

#include "virtio/net/net_engine.h"
#include "virtio/uring/restrictions.h"

namespace ember::virtio {
namespace {

// Frames per io_uring_enter: a full TX ring of Linux's driver (256) takes four.
constexpr unsigned kDepth = 64;
// Every operation is RWF_NOWAIT and ends at once; one that has not within this long means a
// kernel that does not keep that promise, and the device stops rather than hang the VMM thread.
constexpr __kernel_timespec kStuck{.tv_sec = 1, .tv_nsec = 0};
constexpr int kPending = INT_MIN;  // no completion yet

class UringNetEngine : public NetEngine {
  public:
    UringNetEngine(io_uring ring, int tap_fd, bool link)
        : ring_(ring), tap_fd_(tap_fd), link_(link) {}
    ~UringNetEngine() override { ::io_uring_queue_exit(&ring_); }
    UringNetEngine(const UringNetEngine&) = delete;
    UringNetEngine& operator=(const UringNetEngine&) = delete;

    // Linked where the tap can say EAGAIN, so that the first that fails cancels the rest and what
    // was written is a prefix, as with writev one at a time; a frame the tap refused for itself
    // cancels the rest too, and those it cancelled go again after it. Elsewhere each is on its
    // own: links cost a third of the frame rate at 64 bytes (perf/net), each link a task_work hop.
    int write(std::span<const std::span<const iovec>> frames, std::span<int> results) override {
        std::fill(results.begin(), results.end(), -ECANCELED);
        // The frames still to write, in order: all of them at first, then what a link cancelled.
        std::vector<size_t>& todo = todo_;
        todo.resize(frames.size());
        for (size_t i = 0; i < todo.size(); ++i) todo[i] = i;
        size_t from = 0;
        while (from < todo.size()) {
            const size_t n = std::min<size_t>(todo.size() - from, kDepth);
            const int err = run(n, [&](io_uring_sqe* sqe, size_t i) {
                const auto& f = frames[todo[from + i]];
                ::io_uring_prep_writev(sqe, tap_fd_, f.data(), static_cast<unsigned>(f.size()), 0);
                if (link_ && i + 1 < n) sqe->flags |= IOSQE_IO_LINK;
            });
            bool again = false, full = false;
            std::vector<size_t>& next = next_;
            next.clear();
            for (size_t i = 0; i < n; ++i) {
                const size_t frame = todo[from + i];
                if (results_[i] == kPending) continue;  // stays -ECANCELED
                size_t want = 0;
                for (const auto& v : frames[frame]) want += v.iov_len;
                int r = results_[i];
                // A tap takes a frame whole or not at all: a short write is a refusal.
                if (r >= 0) r = static_cast<size_t>(r) == want ? 0 : -EIO;
                results[frame] = r;
                full |= r == -EAGAIN;
                if (r == -ECANCELED && !full) {
                    next.push_back(frame);  // cancelled by a refusal before it: once more
                    again = true;
                }
            }
            if (err) return err;
            if (full) return 0;  // nothing more goes until the tap has room
            if (link_ && again) {
                next.insert(next.end(), todo.begin() + static_cast<std::ptrdiff_t>(from + n),
                            todo.end());
                todo.swap(next);
                from = 0;
                continue;
            }
            from += n;
        }
        return 0;
    }

    // Not linked: a read that finds the tap empty ends with EAGAIN and the others still run, so a
    // frame that arrived in between is read, in its place.
    ReadResult read(std::span<const std::span<uint8_t>> buffers,
                    std::span<size_t> lengths) override {
        const size_t n = std::min<size_t>(buffers.size(), kDepth);
        const int err = run(n, [&](io_uring_sqe* sqe, size_t i) {
            ::io_uring_prep_read(sqe, tap_fd_, buffers[i].data(),
                                 static_cast<unsigned>(buffers[i].size()), 0);
        });
        ReadResult r{n, err};
        for (size_t i = 0; i < n; ++i) {
            const int res = results_[i];
            lengths[i] = res >= 0 ? static_cast<size_t>(res) : kNoFrame;
            r.drained |= res == -EAGAIN;
            if (res < 0 && res != -EAGAIN && res != kPending && r.error == 0) r.error = res;
        }
        return r;
    }

    uint64_t system_calls() const override { return calls_; }

  private:
    // Prepares n RWF_NOWAIT SQEs with `prep`, submits them and waits for their n completions,
    // which RWF_NOWAIT makes immediate: an empty tap says EAGAIN (without it, io_uring would wait
    // for a frame). results_ by SQE, kPending for one that did not complete; 0, or why not all
    // did.
    template <typename Prep>
    int run(size_t n, Prep prep) {
        std::fill_n(results_.begin(), n, kPending);
        for (size_t i = 0; i < n; ++i) {
            // The ring is empty between calls, and n is at most its depth.
            io_uring_sqe* sqe = ::io_uring_get_sqe(&ring_);
            if (sqe == nullptr) return -EBUSY;
            prep(sqe, i);
            sqe->rw_flags = RWF_NOWAIT;
            ::io_uring_sqe_set_data64(sqe, i);
        }
        io_uring_cqe* cqe = nullptr;
        int r;
        do {
            ++calls_;
            __kernel_timespec limit = kStuck;
            r = ::io_uring_submit_and_wait_timeout(&ring_, &cqe, static_cast<unsigned>(n), &limit,
                                                   nullptr);
        } while (r == -EINTR);
        if (r < 0 && r != -ETIME) return r;
        // A submission the kernel cut short (no memory for more requests) leaves SQEs it never
        // saw: they would never complete.
        if (::io_uring_sq_ready(&ring_) > 0) return -ENOMEM;
        for (size_t seen = 0; seen < n;) {
            if (::io_uring_peek_cqe(&ring_, &cqe) != 0) {
                ++calls_;
                __kernel_timespec limit = kStuck;
                const int w = ::io_uring_wait_cqe_timeout(&ring_, &cqe, &limit);
                if (w == -EINTR) continue;
                if (w < 0) return w == -ETIME ? -ETIMEDOUT : w;
            }
            const uint64_t i = ::io_uring_cqe_get_data64(cqe);
            if (i < n) results_[i] = cqe->res;
            ::io_uring_cqe_seen(&ring_, cqe);
            ++seen;
        }
        return 0;
    }

    io_uring ring_;
    int tap_fd_;
    bool link_;
    std::vector<size_t> todo_, next_;  // write()'s, kept for their capacity
    std::array<int, kDepth> results_{};
    uint64_t calls_ = 0;
};

}  // namespace

Result<std::unique_ptr<NetEngine>> make_uring_net_engine(const Tap& tap) {
    auto unavailable = [](std::string_view what, int err) {
        auto e = fail_errno(what, err);
        e.error().kind = ErrorKind::Unavailable;  // then a system call per frame does it
        return e;
    };
    io_uring ring;
    // As the block device's ring (block/uring_engine.cc): COOP_TASKRUN where the kernel has it,
    // and no work until the restrictions are in place; a kernel without R_DISABLED (before 5.10)
    // cannot be restricted. The tap is not registered with the ring: a registered file stays held
    // until the ring's teardown finishes, after ember has gone, and a tap held so is busy for the
    // next ember that opens it.
    int r =
        ::io_uring_queue_init(kDepth, &ring, IORING_SETUP_COOP_TASKRUN | IORING_SETUP_R_DISABLED);
    if (r == -EINVAL) r = ::io_uring_queue_init(kDepth, &ring, IORING_SETUP_R_DISABLED);
    if (r == -EINVAL) return unavailable("io_uring_queue_init with IORING_SETUP_R_DISABLED", -r);
    if (r < 0) return fail_setup_errno("io_uring_queue_init", -r);
    // Bounding a wait (kStuck) takes the kernel's EXT_ARG (5.11); without it liburing adds a
    // timeout operation, which the restrictions below refuse.
    if (!(ring.features & IORING_FEAT_EXT_ARG)) {
        ::io_uring_queue_exit(&ring);
        return unavailable("io_uring without IORING_FEAT_EXT_ARG", ENOSYS);
    }
    // Reads and writes of fds the VMM thread may read and write itself (its seccomp filter), and
    // nothing else: no register call after this one.
    static constexpr uint8_t kOps[] = {IORING_OP_READ, IORING_OP_WRITEV};
    if (auto restricted = restrict_and_enable(
            ring, RingRestrictions{.ops = kOps, .allowed_flags = IOSQE_IO_LINK});
        !restricted) {
        ::io_uring_queue_exit(&ring);
        return std::unexpected(restricted.error());
    }
    // A kernel whose tap cannot take RWF_NOWAIT through io_uring says so to an empty read, which
    // takes no frame.
    io_uring_sqe* sqe = ::io_uring_get_sqe(&ring);
    ::io_uring_prep_read(sqe, tap.fd(), nullptr, 0, 0);
    sqe->rw_flags = RWF_NOWAIT;
    io_uring_cqe* cqe = nullptr;
    __kernel_timespec limit = kStuck;
    r = ::io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &limit, nullptr);
    const int probe = r < 0 ? r : cqe == nullptr ? -ETIMEDOUT : cqe->res;
    if (probe < 0) {
        ::io_uring_queue_exit(&ring);
        return unavailable("a non-blocking read of the tap through io_uring", -probe);
    }
    ::io_uring_cqe_seen(&ring, cqe);
    return std::make_unique<UringNetEngine>(ring, tap.fd(), tap.writes_can_wait());
}

}  // namespace ember::virtio
