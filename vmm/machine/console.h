// The guest's console on the host, on the VMM thread: what the UART's vCPU side puts in the output
// buffer goes to the serial output fd, and host input goes into the UART's receive FIFO as the
// guest makes room. A reader that blocks is waited for with EPOLLOUT, never spun on; input that
// does not fit stays in the host fd until the guest drains the FIFO.
#pragma once

#include <memory>
#include <optional>

#include "core/base/error.h"
#include "core/base/event_fd.h"
#include "core/devices/output_buffer.h"
#include "core/devices/serial.h"
#include "core/event_loop/event_loop.h"

namespace ember {

class Console {
  public:
    // `out_fd` and `in_fd` (-1 for none) are not owned.
    static Result<std::unique_ptr<Console>> create(int out_fd, int in_fd);
    Console(EventFd out_ready, int out_fd, int in_fd);

    // What the UART writes into (it is made after the console, before attach()).
    OutputBuffer& output() { return out_; }
    // Starts pumping through `loop`, feeding `serial`'s receive FIFO.
    Result<void> attach(EventLoop& loop, Serial& serial);

    // Writes what is buffered now, as far as the reader takes it.
    void drain();
    // At exit: what the guest printed last (a panic message, say) is the most useful output, so
    // wait a while for a slow reader, but never forever for one that has stopped reading.
    void flush_at_exit();
    uint64_t dropped() const { return out_.dropped(); }

  private:
    void read_input();

    OutputBuffer out_;
    int out_fd_;
    int in_fd_;
    EventLoop* loop_ = nullptr;
    Serial* serial_ = nullptr;
    std::optional<EventFd> rx_drained_;
    bool output_blocked_ = false;
    bool input_armed_ = false;
};

}  // namespace ember
