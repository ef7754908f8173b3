// How a virtio-net device moves frames to and from its tap (tap.h). Both engines do it on the VMM
// thread, keep frames in order, and have nothing in flight once a call returns:
// - Sync: a writev or read system call per frame;
// - Async: io_uring, one io_uring_enter for a whole batch. Every operation is RWF_NOWAIT, so it
//   finishes inside that call (a frame, or EAGAIN) and none is ever left waiting.
// A frame the tap refuses (EINVAL for a runt or a GSO header it will not take, EIO while its link
// is down, EBADFD once its interface is deleted) is that frame's error alone: the frames after it
// are still written. An engine call that fails as a whole (not one frame's error) leaves the
// engine unusable: the device stops its traffic then.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <span>

#include "core/base/error.h"
#include "virtio/net/tap.h"

namespace ember::virtio {

// A buffer a read left without a frame.
inline constexpr size_t kNoFrame = std::numeric_limits<size_t>::max();

// Buffers [0, looked) were tried, in order: lengths[i] is the frame read into buffer i, or
// kNoFrame. `error` is 0, or why reading failed. `drained`: a read found the tap empty. The tap
// queues each frame and then wakes its waiters, and a non-blocking read says EAGAIN only when its
// queue is empty; so with the reads of a batch made in order and none waiting, any frame not read
// by this call came after that read, and raised an EPOLLIN edge of its own.
struct ReadResult {
    size_t looked = 0;
    int error = 0;
    bool drained = false;
};

class NetEngine {
  public:
    virtual ~NetEngine() = default;
    // Writes frames to the tap, each its iovecs, vnet header first: results[i] is 0 once frame i
    // went, -EAGAIN for the first the tap had no room for (those after it are not written:
    // -ECANCELED), or -errno for a frame the tap refused. Returns 0, or -errno when the engine
    // itself failed (then results[i] says -ECANCELED for each frame it did not get to).
    virtual int write(std::span<const std::span<const iovec>> frames, std::span<int> results) = 0;
    // Reads waiting frames, at most one per buffer, until the tap has none.
    virtual ReadResult read(std::span<const std::span<uint8_t>> buffers,
                            std::span<size_t> lengths) = 0;
    // System calls made so far, for perf/net.
    virtual uint64_t system_calls() const = 0;
};

std::unique_ptr<NetEngine> make_sync_net_engine(const Tap& tap);
// An error of kind Unavailable: this host has no io_uring, forbids it, or its io_uring cannot do
// what this engine needs.
Result<std::unique_ptr<NetEngine>> make_uring_net_engine(const Tap& tap);

}  // namespace ember::virtio
