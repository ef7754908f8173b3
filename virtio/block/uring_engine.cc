#include <fcntl.h>
#include <liburing.h>
#include <sys/uio.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>

#include "core/base/event_fd.h"
#include "virtio/block/io_engine.h"
#include "virtio/block/uring_restrictions.h"

namespace ember::virtio {
namespace {

// Whether a request on `fd` may be tried at once: not with O_DIRECT, where the page cache is not
// in the way and the ring is what brings the depth.
bool buffered(int fd) {
    const int flags = ::fcntl(fd, F_GETFL);
    return flags >= 0 && !(flags & O_DIRECT);
}

bool refuses_nowait(ssize_t n) {
    return n < 0 && (errno == EOPNOTSUPP || errno == EINVAL || errno == ENOSYS);
}

// Whether a buffered `fd`'s file system takes RWF_NOWAIT reads: one byte is asked for, which
// waits for no I/O (a refusal comes at once; a page not cached is EAGAIN, at most after starting
// readahead of the image's first pages, which a guest reads first) and is not used. Asked when the
// image is opened, so that no read reaches the ring before the answer.
bool takes_nowait_reads(int fd) {
    char byte;
    iovec v{&byte, 1};
    return !refuses_nowait(::preadv2(fd, &v, 1, 0, RWF_NOWAIT));
}

class UringEngine : public IoEngine {
  public:
    UringEngine(io_uring ring, EventFd done, int fd, unsigned depth)
        : ring_(ring), done_(std::move(done)), depth_(depth) {
        use_file(fd);
    }
    // What is still in flight after kIoEndWait stays the kernel's: closing the ring cancels what it
    // can, and ember's exit ends the rest. Not waited for twice where the device already gave up.
    ~UringEngine() override {
        std::vector<IoCompletion> ignored;
        if (!abandoned_) (void)drain_for(ignored, kIoEndWait);
        ::io_uring_queue_exit(&ring_);
    }
    UringEngine(const UringEngine&) = delete;
    UringEngine& operator=(const UringEngine&) = delete;

    bool push(const IoOp& op) override {
        // Only the first of a notification's requests: a batch goes to the ring in one
        // io_uring_enter, which serves the page cache's part of it as fast, and the rest at depth.
        const bool first = pushed_++ == 0;
        if (first && op.kind != IoOp::Kind::Flush && done_at_once(op)) return true;
        if (in_flight_ >= depth_) return false;
        io_uring_sqe* sqe = ::io_uring_get_sqe(&ring_);
        if (sqe == nullptr) return false;
        const auto n = static_cast<unsigned>(op.iov.size());
        // One buffer (the usual 4 KiB request) goes as a plain read/write: the kernel's
        // non-vectored path is measurably cheaper, for buffered writes by about a third.
        const bool single = n == 1;
        switch (op.kind) {
            case IoOp::Kind::Read:
                if (single)
                    ::io_uring_prep_read(sqe, 0, op.iov[0].iov_base,
                                         static_cast<unsigned>(op.iov[0].iov_len), op.offset);
                else
                    ::io_uring_prep_readv(sqe, 0, op.iov.data(), n, op.offset);
                break;
            case IoOp::Kind::Write:
                if (single)
                    ::io_uring_prep_write(sqe, 0, op.iov[0].iov_base,
                                          static_cast<unsigned>(op.iov[0].iov_len), op.offset);
                else
                    ::io_uring_prep_writev(sqe, 0, op.iov.data(), n, op.offset);
                break;
            case IoOp::Kind::Flush: ::io_uring_prep_fsync(sqe, 0, IORING_FSYNC_DATASYNC); break;
        }
        sqe->flags |= IOSQE_FIXED_FILE;  // index 0: the registered image
        // A read on a file system that refuses RWF_NOWAIT cannot be tried without blocking:
        // straight to a worker. io_uring tries a buffered read inline first, and on 6.12 that try
        // ran FUSE's readahead on the VMM thread, which waited there for the image once it held
        // max_background requests. (A buffered write is tried inline only where the file system
        // says it can be: FMODE_BUF_WASYNC.)
        if (op.kind == IoOp::Kind::Read && async_reads_) sqe->flags |= IOSQE_ASYNC;
        ::io_uring_sqe_set_data64(sqe, op.tag);
        ++in_flight_;
        return true;
    }

    void submit() override {
        pushed_ = 0;
        int r;
        do {
            r = ::io_uring_submit(&ring_);
        } while (r == -EINTR);
    }

    // The completion eventfd is watched edge-triggered (IoEngine::completion_fd), so it is never
    // read: every CQE the kernel posts signals it again.
    void reap(std::vector<IoCompletion>& out) override {
        out.insert(out.end(), ready_.begin(), ready_.end());
        ready_.clear();
        io_uring_cqe* cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&ring_, head, cqe) {
            out.push_back(IoCompletion{::io_uring_cqe_get_data64(cqe), cqe->res});
            ++seen;
        }
        ::io_uring_cq_advance(&ring_, seen);
        in_flight_ -= seen;
    }

    void drain(std::vector<IoCompletion>& out) override { (void)wait_out(out, std::nullopt); }
    bool drain_for(std::vector<IoCompletion>& out, std::chrono::milliseconds limit) override {
        abandoned_ = !wait_out(out, std::chrono::steady_clock::now() + limit);
        return !abandoned_;
    }

    int completion_fd() const override { return done_.fd(); }
    bool completes_in_push() const override { return !ready_.empty(); }
    size_t in_flight() const override { return in_flight_ + ready_.size(); }
    Result<void> replace_file(int fd) override {
        // The image is registered file 0: swap what that slot holds.
        int r = ::io_uring_register_files_update(&ring_, 0, &fd, 1);
        if (r < 0) return fail_errno("io_uring_register_files_update", -r);
        use_file(fd);
        return {};
    }

  private:
    // Reaps until nothing is in flight, or until `deadline`. A kernel without EXT_ARG (before
    // 5.11) cannot bound the wait on this ring (its timeout operation is not among the ring's
    // allowed ones): there the wait is whole.
    bool wait_out(std::vector<IoCompletion>& out,
                  std::optional<std::chrono::steady_clock::time_point> deadline) {
        out.insert(out.end(), ready_.begin(), ready_.end());
        ready_.clear();
        submit();
        const bool bounded = deadline && (ring_.features & IORING_FEAT_EXT_ARG);
        while (in_flight_ > 0) {
            io_uring_cqe* cqe;
            int r;
            if (bounded) {
                const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(
                    *deadline - std::chrono::steady_clock::now());
                if (left.count() <= 0) {
                    reap(out);  // what came in at the deadline is not left behind
                    break;
                }
                __kernel_timespec ts{.tv_sec = left.count() / 1'000'000'000,
                                     .tv_nsec = left.count() % 1'000'000'000};
                r = ::io_uring_wait_cqe_timeout(&ring_, &cqe, &ts);
                if (r == -ETIME) continue;  // the deadline is checked above
            } else {
                r = ::io_uring_wait_cqe(&ring_, &cqe);
            }
            if (r == -EINTR) continue;  // a counted signal (core/base/signal_counts.h)
            if (r < 0) break;
            reap(out);
        }
        return in_flight_ == 0;
    }

    // A read the page cache holds, or a write it takes, without waiting (RWF_NOWAIT): done here,
    // one system call, where the ring would cost a submission, a completion, its eventfd and an
    // epoll wakeup (a guest writing small blocks one at a time through the page cache ran at a
    // third of the synchronous engine's speed). Whatever would wait (a page not cached, dirty
    // pages throttled, a file system that cannot say), or comes short, goes to the ring whole: a
    // read or write of the same bytes again is the same request. A file system that refuses
    // RWF_NOWAIT for a kind of request is not asked again.
    bool done_at_once(const IoOp& op) {
        const bool read = op.kind == IoOp::Kind::Read;
        if (!(read ? at_once_reads_ : at_once_writes_)) return false;
        size_t total = 0;
        for (const iovec& v : op.iov) total += v.iov_len;
        const int n_iov = static_cast<int>(op.iov.size());
        const ssize_t n =
            read ? ::preadv2(fd_, op.iov.data(), n_iov, static_cast<off_t>(op.offset), RWF_NOWAIT)
                 : ::pwritev2(fd_, op.iov.data(), n_iov, static_cast<off_t>(op.offset), RWF_NOWAIT);
        if (n >= 0 && static_cast<size_t>(n) == total) {
            ready_.push_back(IoCompletion{op.tag, n});
            return true;
        }
        if (refuses_nowait(n)) {
            (read ? at_once_reads_ : at_once_writes_) = false;
            if (read) async_reads_ = true;
        }
        return false;
    }

    void use_file(int fd) {
        fd_ = fd;
        const bool cached = buffered(fd);
        at_once_writes_ = cached;
        at_once_reads_ = cached && takes_nowait_reads(fd);
        async_reads_ = cached && !at_once_reads_;
    }

    io_uring ring_;
    EventFd done_;
    unsigned depth_;  // the most requests in flight
    int fd_ = -1;
    bool at_once_reads_ = false, at_once_writes_ = false;
    // The image's file system refuses RWF_NOWAIT reads: they go to io-wq (IOSQE_ASYNC).
    bool async_reads_ = false;
    std::vector<IoCompletion> ready_;
    size_t pushed_ = 0;  // since the last submit()
    size_t in_flight_ = 0;
    bool abandoned_ = false;  // a bounded drain ended with operations in flight
};

}  // namespace

Result<std::unique_ptr<IoEngine>> make_uring_engine(int fd, unsigned depth) {
    io_uring ring;
    // COOP_TASKRUN: completions are run when we next enter the kernel instead of by interrupting
    // us; older kernels refuse the flag, and then the ring works without it. R_DISABLED: the ring
    // takes no work until its restrictions are in place (uring_restrictions.h).
    int r =
        ::io_uring_queue_init(depth, &ring, IORING_SETUP_COOP_TASKRUN | IORING_SETUP_R_DISABLED);
    if (r == -EINVAL) r = ::io_uring_queue_init(depth, &ring, IORING_SETUP_R_DISABLED);
    if (r < 0) return fail_setup_errno("io_uring_queue_init", -r);
    auto done = EventFd::create();
    if (!done) {
        ::io_uring_queue_exit(&ring);
        return std::unexpected(done.error());
    }
    if (r = ::io_uring_register_files(&ring, &fd, 1); r < 0) {
        ::io_uring_queue_exit(&ring);
        return fail_errno("io_uring_register_files", -r);
    }
    if (r = ::io_uring_register_eventfd(&ring, done->fd()); r < 0) {
        ::io_uring_queue_exit(&ring);
        return fail_errno("io_uring_register_eventfd", -r);
    }
    // A request the page cache cannot serve at once runs on one of io-wq's bounded workers, and
    // those are the submitting thread's, shared by all its rings: 4 per CPU unless raised. A drive
    // whose image stops answering holds one per request, and with 8 held on 2 CPUs the other
    // drives' requests waited behind them. Each ring raises the thread's limit by its depth (the
    // most it keeps in flight), so a stalled drive never takes them all; workers start only when
    // needed. Kernels before 5.15 cannot raise it, and the ring works as before.
    unsigned limits[2] = {0, 0};  // 0: unchanged; the current limits come back
    if (::io_uring_register_iowq_max_workers(&ring, limits) == 0 && limits[0] > 0) {
        limits[0] += depth;
        limits[1] = 0;
        (void)::io_uring_register_iowq_max_workers(&ring, limits);
    }
    if (auto restricted = restrict_and_enable(ring); !restricted) {
        ::io_uring_queue_exit(&ring);
        return std::unexpected(restricted.error());
    }
    return std::make_unique<UringEngine>(ring, std::move(*done), fd, depth);
}

}  // namespace ember::virtio
