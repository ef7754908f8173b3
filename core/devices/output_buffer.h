// A bounded byte queue between vCPU threads (which fill it from the UART) and the VMM thread
// (which drains it to stdout or a file). A full buffer drops the new bytes and counts them, so a
// stalled reader never stalls a vCPU.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "core/base/error.h"
#include "core/base/event_fd.h"

namespace ember {

class OutputBuffer {
  public:
    // `ready` is signalled when the buffer goes from empty to non-empty.
    OutputBuffer(size_t capacity, EventFd ready);

    void push(std::span<const uint8_t> bytes);

    enum class Drain { Empty, Blocked };
    // Writes what it can to fd; Blocked when fd would block with bytes still queued. Pushes go on
    // while it writes. Drainers take turns: the VMM thread drains, and so does whichever thread
    // pauses the VM (an in-process user may pause from another).
    Result<Drain> drain_to(int fd);

    // Takes everything queued.
    std::vector<uint8_t> take_all();
    // Drops everything queued, counting it as dropped.
    void discard_all();

    int ready_fd() const { return ready_.fd(); }
    void consume_ready() const { ready_.consume(); }
    uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

  private:
    size_t capacity_;
    EventFd ready_;
    // Held for a whole drain, and by take_all and discard_all, so that what a drainer copied out
    // is still queued when it accounts for the bytes it wrote. Pushes never take it.
    std::mutex drain_mutex_;
    std::mutex mutex_;
    // Not zeroed when made: a page of them costs memory only once output reaches it, and a
    // thousand idle clones each keep one pair (the head goes back to 0 whenever it is drained).
    std::unique_ptr<uint8_t[]> ring_;
    std::unique_ptr<uint8_t[]> scratch_;  // the drainer's copy, written out without the lock
    size_t head_ = 0;                     // next byte to drain
    size_t size_ = 0;
    std::atomic<uint64_t> dropped_{0};
};

}  // namespace ember
