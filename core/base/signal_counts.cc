#include "core/base/signal_counts.h"

#include <signal.h>

#include <atomic>
#include <iterator>

namespace ember::signal_counts {
namespace {

constexpr int kCounted[] = {SIGBUS, SIGSEGV, SIGXFSZ, SIGXCPU, SIGPIPE, SIGHUP, SIGILL};
std::atomic<uint64_t> g_counts[std::size(kCounted)];
static_assert(std::atomic<uint64_t>::is_always_lock_free);

int slot(int signo) {
    for (int i = 0; i < static_cast<int>(std::size(kCounted)); ++i)
        if (kCounted[i] == signo) return i;
    return -1;
}

void on_survivable(int signo) {
    count(signo);
}

}  // namespace

void count(int signo) {
    if (int i = slot(signo); i >= 0) g_counts[i].fetch_add(1, std::memory_order_relaxed);
}

uint64_t of(int signo) {
    int i = slot(signo);
    return i < 0 ? 0 : g_counts[i].load(std::memory_order_relaxed);
}

metrics::Group metrics_group() {
    return {"signals",
            {{"sigbus", of(SIGBUS)},
             {"sigsegv", of(SIGSEGV)},
             {"sigxfsz", of(SIGXFSZ)},
             {"sigxcpu", of(SIGXCPU)},
             {"sigpipe", of(SIGPIPE)},
             {"sighup", of(SIGHUP)},
             {"sigill", of(SIGILL)}}};
}

void count_and_ignore_survivable() {
    struct sigaction sa{};
    sa.sa_handler = on_survivable;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (int sig : {SIGPIPE, SIGXFSZ}) ::sigaction(sig, &sa, nullptr);
}

}  // namespace ember::signal_counts
