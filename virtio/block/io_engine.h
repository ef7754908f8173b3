// How a virtio-blk device does its I/O. The device pushes operations, submits them in one batch
// per queue notification, and later collects completions; `tag` comes back with each.
#pragma once

#include <sys/uio.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/base/error.h"

namespace ember::virtio {

struct IoOp {
    enum class Kind { Read, Write, Flush } kind;
    uint64_t offset;
    std::span<const iovec> iov;  // must stay valid until the operation completes
    uint64_t tag;
};

struct IoCompletion {
    uint64_t tag;
    int64_t result;  // bytes transferred, or -errno
};

class IoEngine {
  public:
    virtual ~IoEngine() = default;
    // False when the engine cannot take more now (the ring is full); try after completions.
    virtual bool push(const IoOp& op) = 0;
    // Hands everything pushed to the kernel.
    virtual void submit() = 0;
    // Appends finished operations to `out`.
    virtual void reap(std::vector<IoCompletion>& out) = 0;
    // Waits for every operation in flight and appends them to `out` (reset, a snapshot, a new
    // image).
    virtual void drain(std::vector<IoCompletion>& out) = 0;
    // As drain(), but for at most `limit`: false when operations were still in flight then (an
    // image that stopped answering), which stay the kernel's (the device's end, ember's exit).
    virtual bool drain_for(std::vector<IoCompletion>& out, std::chrono::milliseconds limit) = 0;
    // Signalled whenever completions are posted; -1 if operations complete inside push(). Watch
    // it edge-triggered: reap() does not read it.
    virtual int completion_fd() const = 0;
    // Whether some operations pushed have completed already, without a signal: reap them now.
    virtual bool completes_in_push() const { return completion_fd() < 0; }
    virtual size_t in_flight() const = 0;
    // With nothing in flight: operations from now on go to `fd` (a drive's new image). The
    // caller keeps `fd` open.
    virtual Result<void> replace_file(int fd) = 0;
};

// How long a device's end waits for its requests (drain_for): a drive whose image stopped
// answering does not hold up ember's exit, which a termination signal bounds at a second in all
// (vmm/app/termination_watch.h).
inline constexpr std::chrono::milliseconds kIoEndWait{500};

// preadv/pwritev/fdatasync on the calling thread; completions are ready when push() returns.
std::unique_ptr<IoEngine> make_sync_engine(int fd);
// io_uring with the image registered as a fixed file and an eventfd for completions; a buffered
// image's reads and writes the page cache can take at once are done in push(), and at most `depth`
// requests are in flight (push() refuses more). An error of kind Unavailable: this host has no
// io_uring or forbids it.
Result<std::unique_ptr<IoEngine>> make_uring_engine(int fd, unsigned depth);

}  // namespace ember::virtio
