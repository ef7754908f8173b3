// The termination signals (SIGTERM, SIGINT, SIGHUP), read on a thread of their own, so that they
// end ember within a second whatever the VMM thread waits on: guest memory whose file system has
// stopped answering, or a vCPU that waits on such memory. Each signal is handed on (on_signal:
// the VMM thread's orderly end, which stops the vCPUs, flushes the console, ends the devices and
// says why the VM ended). If a second after the first signal the vCPUs have not stopped (ended()
// says not), or kEndCap after it the orderly end has still not finished (its own steps are each
// bounded: the console's flush, each drive's wait), this thread ends the process itself: it says
// so, removes the API socket's file, restores the terminal and exits with status 1. An exit cannot
// end a thread the kernel holds uninterruptibly (a FUSE request its server has already read), so
// such a process still ends only once that request is answered.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/base/error.h"
#include "core/base/event_fd.h"
#include "core/base/unique_fd.h"
#include "core/seccomp/filters.h"

namespace ember {

struct TerminationHooks {
    // For each signal, with its number, on the watch's thread.
    std::function<void(int)> on_signal;
    // Whether the VM's vCPUs have stopped (the orderly end is past what can wait without bound).
    std::function<bool()> ended;
    // The watch's thread could not be confined: ember must not run on.
    std::function<void(std::string)> on_failure;
};

class TerminationWatch {
  public:
    static constexpr std::chrono::milliseconds kBound{1000};
    static constexpr std::chrono::milliseconds kEndCap{3000};

    // Reads `signal_fd` (a signalfd for the termination signals, which every thread blocks) until
    // destruction. `filter`, if any, is installed on that thread first (not owned).
    static Result<std::unique_ptr<TerminationWatch>> start(UniqueFd signal_fd,
                                                           TerminationHooks hooks,
                                                           const seccomp::BpfProgram* filter);
    ~TerminationWatch();
    TerminationWatch(const TerminationWatch&) = delete;
    TerminationWatch& operator=(const TerminationWatch&) = delete;

    // The orderly end is done (run() returned): no signal starts the bound any more, and one that
    // has started it no longer ends the process.
    void disarm();

    TerminationWatch(UniqueFd signal_fd, EventFd stop, TerminationHooks hooks);

  private:
    void run(const seccomp::BpfProgram* filter);
    // Ends the process now, unless disarmed meanwhile: the VMM thread did not end it in time.
    void force_exit(int signo, bool vcpus_stopped);

    UniqueFd signal_fd_;
    EventFd stop_;
    TerminationHooks hooks_;
    std::mutex armed_mutex_;  // a disarm and a forced exit never cross
    bool armed_ = true;
    std::thread thread_;
};

}  // namespace ember
