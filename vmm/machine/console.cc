#include "vmm/machine/console.h"

#include <poll.h>
#include <unistd.h>

#include <chrono>

#include "core/base/log.h"

namespace ember {
namespace {

constexpr size_t kOutputCapacity = 64 * 1024;
constexpr auto kFinalFlushTimeout = std::chrono::seconds(2);

}  // namespace

Result<std::unique_ptr<Console>> Console::create(int out_fd, int in_fd) {
    auto ready = EventFd::create();
    EMBER_TRY(ready);
    return std::make_unique<Console>(std::move(*ready), out_fd, in_fd);
}

Console::Console(EventFd out_ready, int out_fd, int in_fd)
    : out_(kOutputCapacity, std::move(out_ready)), out_fd_(out_fd), in_fd_(in_fd) {}

Result<void> Console::attach(EventLoop& loop, Serial& serial) {
    loop_ = &loop;
    serial_ = &serial;
    if (auto r = loop.add(out_.ready_fd(), EPOLLIN,
                          [this](uint32_t) {
                              out_.consume_ready();
                              drain();
                          });
        !r)
        return r;
    if (in_fd_ < 0) return {};
    auto drained = EventFd::create();
    EMBER_TRY(drained);
    rx_drained_ = std::move(*drained);
    serial.set_rx_drained_callback([this] { rx_drained_->signal(); });
    if (auto r = loop.add(rx_drained_->fd(), EPOLLIN,
                          [this](uint32_t) {
                              rx_drained_->consume();
                              if (!input_armed_ && in_fd_ >= 0)
                                  input_armed_ = static_cast<bool>(loop_->modify(in_fd_, EPOLLIN));
                          });
        !r)
        return r;
    EMBER_TRY(loop.add(in_fd_, EPOLLIN, [this](uint32_t) { read_input(); }), "serial input");
    input_armed_ = true;
    return {};
}

void Console::drain() {
    auto status = out_.drain_to(out_fd_);
    if (!status) {
        log::warn(status.error().message + "; discarding guest console output from now on");
        if (loop_) loop_->remove(out_.ready_fd());
        return;
    }
    const bool blocked = *status == OutputBuffer::Drain::Blocked;
    if (!loop_) return;
    if (blocked && !output_blocked_) {
        // Wait for the reader instead of spinning; regular files never block and never get here.
        if (loop_->add(out_fd_, EPOLLOUT, [this](uint32_t) { drain(); })) output_blocked_ = true;
    } else if (!blocked && output_blocked_) {
        loop_->remove(out_fd_);
        output_blocked_ = false;
    }
}

void Console::read_input() {
    const size_t space = serial_->rx_space();
    if (space == 0) {
        // The guest has not read what it has; wait for it to drain before taking more from the
        // host.
        (void)loop_->modify(in_fd_, 0);
        input_armed_ = false;
        return;
    }
    uint8_t buf[Serial::kRxFifoSize];
    ssize_t n = ::read(in_fd_, buf, space);
    if (n > 0) {
        serial_->enqueue_input(std::span(buf, static_cast<size_t>(n)));
    } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        // Said, since a guest that waits for input would otherwise wait without a word.
        log::warn(n == 0 ? std::string("the console's input ended; the guest gets no more")
                         : "reading the console's input: " + os_error(errno) +
                               "; the guest gets no more");
        loop_->remove(in_fd_);
        in_fd_ = -1;
    }
}

void Console::flush_at_exit() {
    const auto deadline = std::chrono::steady_clock::now() + kFinalFlushTimeout;
    while (true) {
        auto status = out_.drain_to(out_fd_);
        if (!status || *status == OutputBuffer::Drain::Empty) return;
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        pollfd p{out_fd_, POLLOUT, 0};
        if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
            out_.discard_all();
            return;
        }
    }
}

}  // namespace ember
