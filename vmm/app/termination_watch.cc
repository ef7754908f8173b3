#include "vmm/app/termination_watch.h"

#include <poll.h>
#include <pthread.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cstring>

#include "core/base/fatal_exit.h"
#include "core/base/log.h"
#include "core/seccomp/install.h"

namespace ember {

Result<std::unique_ptr<TerminationWatch>> TerminationWatch::start(
    UniqueFd signal_fd, TerminationHooks hooks, const seccomp::BpfProgram* filter) {
    auto stop = EventFd::create();
    EMBER_TRY(stop);
    auto watch = std::make_unique<TerminationWatch>(std::move(signal_fd), std::move(*stop),
                                                    std::move(hooks));
    try {
        watch->thread_ = std::thread([w = watch.get(), filter] { w->run(filter); });
    } catch (const std::system_error& e) {
        return fail(std::string("cannot start the thread that watches for SIGTERM: ") + e.what());
    }
    return watch;
}

TerminationWatch::TerminationWatch(UniqueFd signal_fd, EventFd stop, TerminationHooks hooks)
    : signal_fd_(std::move(signal_fd)), stop_(std::move(stop)), hooks_(std::move(hooks)) {}

TerminationWatch::~TerminationWatch() {
    disarm();
    stop_.signal();
    if (thread_.joinable()) thread_.join();
}

void TerminationWatch::disarm() {
    std::lock_guard lock(armed_mutex_);
    armed_ = false;
}

void TerminationWatch::run(const seccomp::BpfProgram* filter) {
    ::pthread_setname_np(::pthread_self(), "ember_signals");
    log::set_thread_name("ember_signals");
    // Confined as the VMM thread is: what it does beside it (undoing and exiting) is the same.
    if (filter != nullptr) {
        if (auto r = seccomp::install(*filter, seccomp::ThreadKind::Vmm); !r) {
            if (hooks_.on_failure) hooks_.on_failure(r.error().message);
            return;
        }
    }
    int first = 0;  // the first signal, once one came
    std::chrono::steady_clock::time_point signalled{};
    for (;;) {
        int timeout = -1;
        bool vcpus_stopped = false;
        if (first != 0) {
            // A second for the vCPUs to stop; kEndCap for the whole end once they have.
            vcpus_stopped = hooks_.ended && hooks_.ended();
            const auto deadline = signalled + (vcpus_stopped ? kEndCap : kBound);
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) {
                force_exit(first, vcpus_stopped);
                first = 0;  // disarmed meanwhile: the orderly end is done
                continue;
            }
            // Looked at again every 100 ms: the vCPUs may stop meanwhile.
            timeout = static_cast<int>(std::min<int64_t>(left.count(), 100));
        }
        pollfd fds[2] = {{signal_fd_.get(), POLLIN, 0}, {stop_.fd(), POLLIN, 0}};
        const int n = ::poll(fds, 2, timeout);
        if (fds[1].revents != 0) return;
        if (n <= 0 || !(fds[0].revents & POLLIN)) continue;
        signalfd_siginfo info{};
        if (::read(signal_fd_.get(), &info, sizeof info) != sizeof info) continue;
        const int signo = static_cast<int>(info.ssi_signo);
        if (hooks_.on_signal) hooks_.on_signal(signo);
        if (first == 0) {
            first = signo;
            signalled = std::chrono::steady_clock::now();
        }
    }
}

void TerminationWatch::force_exit(int signo, bool vcpus_stopped) {
    std::lock_guard lock(armed_mutex_);
    if (!armed_) return;
    const std::string waited =
        vcpus_stopped ? std::to_string(kEndCap.count()) + " ms of " + strsignal(signo) +
                            ": its end is still under way"
                      : std::to_string(kBound.count()) + " ms of " + strsignal(signo) +
                            ": the VMM thread is still busy or waiting (a long snapshot, guest "
                            "memory whose file system does not answer, a vCPU that waits on it)";
    log::error("the microVM did not end within " + waited + "; ember ends without it");
    // Holding the lock: a disarm that comes now waits for an exit that does not return.
    fatal_exit::exit_here(1);
}

}  // namespace ember
