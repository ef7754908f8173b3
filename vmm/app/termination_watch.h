// The termination signals (SIGTERM, SIGINT, SIGHUP), read on a thread of their own, so that they
// end ember within a second whatever the VMM thread waits on: guest memory whose file system has
// stopped answering, or a vCPU that waits on such memory. Each signal is handed on (on_signal:
// the VMM thread's orderly end, which stops the VM, flushes the console and says why it ended);
// if that end has not come a second after the first signal, this thread ends the process itself:
// it says so, removes the API socket's file, restores the terminal and exits with status 1. An
// exit cannot end a thread the kernel holds uninterruptibly (a FUSE request its server has
// already read), so such a process still ends only once that request is answered.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <thread>

#include "core/base/error.h"
#include "core/base/event_fd.h"
#include "core/base/unique_fd.h"
#include "core/seccomp/filters.h"

namespace ember {

class TerminationWatch {
  public:
    static constexpr std::chrono::milliseconds kBound{1000};

    // Reads `signal_fd` (a signalfd for the termination signals, which every thread blocks) until
    // destruction; `on_signal` runs on the watch's thread for each signal, with its number.
    // `filter`, if any, is installed on that thread first (not owned).
    static Result<std::unique_ptr<TerminationWatch>> start(UniqueFd signal_fd,
                                                           std::function<void(int)> on_signal,
                                                           const seccomp::BpfProgram* filter);
    ~TerminationWatch();
    TerminationWatch(const TerminationWatch&) = delete;
    TerminationWatch& operator=(const TerminationWatch&) = delete;

    // The orderly end is done (run() returned): a signal no longer starts the bound.
    void disarm();

    TerminationWatch(UniqueFd signal_fd, EventFd stop, std::function<void(int)> on_signal);

  private:
    void run(const seccomp::BpfProgram* filter);
    // Ends the process now: the VMM thread did not end it within kBound of `signo`.
    [[noreturn]] void force_exit(int signo);

    UniqueFd signal_fd_;
    EventFd stop_;
    std::function<void(int)> on_signal_;
    std::atomic<bool> armed_{true};
    std::thread thread_;
};

}  // namespace ember
