// How a virtio-net device moves frames to and from its tap (tap.h). Both engines do it on the VMM
// thread, keep frames in order, and have nothing in flight once a call returns, so a snapshot, a
// reset or a rate limiter sees the device exactly as with either:
// - Sync: a writev or read system call per frame;
// - Async: io_uring, one io_uring_enter for a whole batch. The tap stays non-blocking, so every
//   operation finishes inside that call (a frame, or EAGAIN) and none is ever left waiting.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <span>

#include "core/base/error.h"
#include "virtio/net/tap.h"

namespace ember::virtio {

// Frames read into buffers [0, read), in order, each of lengths[i] bytes. `error` is 0 once the
// tap had no more frames (or every buffer was used), or why reading failed.
struct ReadResult {
    size_t read = 0;
    int error = 0;
};

class NetEngine {
  public:
    virtual ~NetEngine() = default;
    // Writes frames to the tap, each its iovecs, vnet header first: results[i] is 0 once frame i
    // went, or -errno. Once one fails, those after it are not written (-ECANCELED), except where
    // the tap can never say EAGAIN (Tap::writes_can_wait): there io_uring writes each frame on
    // its own, and one it refuses (a malformed header) does not hold back the rest.
    virtual void write(std::span<const std::span<const iovec>> frames, std::span<int> results) = 0;
    virtual ReadResult read(std::span<const std::span<uint8_t>> buffers,
                            std::span<size_t> lengths) = 0;
    // System calls made so far, for perf/net.
    virtual uint64_t system_calls() const = 0;
};

std::unique_ptr<NetEngine> make_sync_net_engine(const Tap& tap);
// An error of kind Unavailable: this host has no io_uring or forbids it.
Result<std::unique_ptr<NetEngine>> make_uring_net_engine(const Tap& tap);

}  // namespace ember::virtio
