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
    UniqueFd signal_fd, std::function<void(int)> on_signal, const seccomp::BpfProgram* filter) {
    auto stop = EventFd::create();
    EMBER_TRY(stop);
    auto watch = std::make_unique<TerminationWatch>(std::move(signal_fd), std::move(*stop),
                                                    std::move(on_signal));
    try {
        watch->thread_ = std::thread([w = watch.get(), filter] { w->run(filter); });
    } catch (const std::system_error& e) {
        return fail(std::string("cannot start the thread that watches for SIGTERM: ") + e.what());
    }
    return watch;
}

TerminationWatch::TerminationWatch(UniqueFd signal_fd, EventFd stop,
                                   std::function<void(int)> on_signal)
    : signal_fd_(std::move(signal_fd)), stop_(std::move(stop)), on_signal_(std::move(on_signal)) {}

TerminationWatch::~TerminationWatch() {
    disarm();
    stop_.signal();
    if (thread_.joinable()) thread_.join();
}

void TerminationWatch::disarm() {
    armed_.store(false, std::memory_order_release);
}

void TerminationWatch::run(const seccomp::BpfProgram* filter) {
    ::pthread_setname_np(::pthread_self(), "ember_signals");
    log::set_thread_name("ember_signals");
    // Confined as the VMM thread is: what it does beside it (undoing and exiting) is the same.
    if (filter != nullptr) (void)seccomp::install(*filter, seccomp::ThreadKind::Vmm);
    int first = 0;  // the first signal, once one came
    std::chrono::steady_clock::time_point deadline{};
    for (;;) {
        int timeout = -1;
        if (first != 0) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            timeout = static_cast<int>(std::max<int64_t>(left.count(), 0));
        }
        pollfd fds[2] = {{signal_fd_.get(), POLLIN, 0}, {stop_.fd(), POLLIN, 0}};
        const int n = ::poll(fds, 2, timeout);
        if (fds[1].revents != 0) return;
        if (n == 0 && first != 0) {
            if (armed_.load(std::memory_order_acquire)) force_exit(first);
            first = 0;  // disarmed meanwhile: the orderly end is done
            continue;
        }
        if (n < 0 || !(fds[0].revents & POLLIN)) continue;
        signalfd_siginfo info{};
        if (::read(signal_fd_.get(), &info, sizeof info) != sizeof info) continue;
        const int signo = static_cast<int>(info.ssi_signo);
        on_signal_(signo);
        if (first == 0 && armed_.load(std::memory_order_acquire)) {
            first = signo;
            deadline = std::chrono::steady_clock::now() + kBound;
        }
    }
}

void TerminationWatch::force_exit(int signo) {
    log::error(std::string("the microVM did not end within ") + std::to_string(kBound.count()) +
               " ms of " + strsignal(signo) +
               ": the VMM thread is still waiting (on guest memory whose file system does not "
               "answer, or a vCPU that waits on it); ember ends without it");
    fatal_exit::exit_here(1);
}

}  // namespace ember
