#include "core/event_loop/event_loop.h"

#include <array>

namespace ember {

Result<EventLoop> EventLoop::create() {
    int fd = ::epoll_create1(EPOLL_CLOEXEC);
    if (fd < 0) return fail_errno("epoll_create1");
    return EventLoop(UniqueFd(fd));
}

Result<void> EventLoop::add(int fd, uint32_t events, Handler handler) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) < 0) return fail_errno("epoll_ctl add");
    handlers_[fd] = std::make_shared<Handler>(std::move(handler));
    return {};
}

Result<void> EventLoop::modify(int fd, uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev) < 0) return fail_errno("epoll_ctl mod");
    return {};
}

void EventLoop::remove(int fd) {
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
    handlers_.erase(fd);
}

Result<int> EventLoop::run_once(int timeout_ms) {
    std::array<epoll_event, 32> events;
    int n = ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), timeout_ms);
    if (n < 0) {
        if (errno == EINTR) return 0;
        return fail_errno("epoll_wait");
    }
    int dispatched = 0;
    for (int i = 0; i < n; ++i) {
        auto it = handlers_.find(events[i].data.fd);
        if (it == handlers_.end()) continue;  // removed by an earlier handler in this batch
        auto handler = it->second;
        (*handler)(events[i].events);
        ++dispatched;
        ++events_handled_;
    }
    return dispatched;
}

Result<void> EventLoop::run() {
    stopped_ = false;
    while (!stopped_) {
        EMBER_TRY(run_once(-1));
    }
    return {};
}

}  // namespace ember
