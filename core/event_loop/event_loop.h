// core/event_loop: the VMM thread's epoll loop. Handlers run on the loop's thread, one at a time,
// so what they touch needs no lock against each other; other threads reach the loop only through
// fds.
#pragma once

#include <sys/epoll.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>

#include "core/base/error.h"
#include "core/base/unique_fd.h"

namespace ember {

class EventLoop {
  public:
    using Handler = std::function<void(uint32_t events)>;

    static Result<EventLoop> create();

    // The loop does not own fd; remove() it before closing it.
    Result<void> add(int fd, uint32_t events, Handler handler);
    Result<void> modify(int fd, uint32_t events);
    void remove(int fd);

    // Dispatches until stop() is called from a handler.
    Result<void> run();
    // Waits up to timeout_ms for one batch of events and runs their handlers; returns how many
    // ran. For tests and benchmarks, which drive the loop themselves.
    Result<int> run_once(int timeout_ms);
    void stop() { stopped_ = true; }
    // Handlers run so far: Firecracker's vmm.device_events.
    uint64_t events_handled() const { return events_handled_; }

  private:
    explicit EventLoop(UniqueFd epoll) : epoll_(std::move(epoll)) {}
    UniqueFd epoll_;
    // Handlers are shared so one may remove itself (or another) while it runs.
    std::unordered_map<int, std::shared_ptr<Handler>> handlers_;
    bool stopped_ = false;
    uint64_t events_handled_ = 0;
};

}  // namespace ember
