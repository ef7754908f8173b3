#include "vmm/machine/sigbus_guard.h"

#include <signal.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstring>

#include "core/base/fatal_exit.h"
#include "core/base/signal_counts.h"

namespace ember {
namespace {

// Read by the signal handler: lock-free atomics only.
constexpr size_t kMaxRanges = 4;
std::array<std::atomic<uintptr_t>, kMaxRanges> g_begin{};
std::array<std::atomic<uintptr_t>, kMaxRanges> g_end{};

bool in_guarded_range(uintptr_t addr) {
    for (size_t i = 0; i < kMaxRanges; ++i)
        if (addr >= g_begin[i].load(std::memory_order_acquire) &&
            addr < g_end[i].load(std::memory_order_acquire))
            return true;
    return false;
}

void on_sigbus(int sig, siginfo_t* info, void*) {
    auto addr = reinterpret_cast<uintptr_t>(info->si_addr);
    if (!in_guarded_range(addr)) {
        ::signal(sig, SIG_DFL);
        return;
    }
    signal_counts::count(SIGBUS);
    static const char prefix[] =
        "ember: error: guest memory was lost: the snapshot's memory file was truncated or "
        "changed under the running VM (SIGBUS at 0x";
    char line[sizeof prefix + 32];
    size_t n = sizeof prefix - 1;
    std::memcpy(line, prefix, n);
    char digits[17];
    int d = 0;
    do {
        digits[d++] = "0123456789abcdef"[addr & 0xf];
        addr >>= 4;
    } while (addr && d < 16);
    while (d) line[n++] = digits[--d];
    line[n++] = ')';
    line[n++] = '\n';
    [[maybe_unused]] ssize_t w = ::write(STDERR_FILENO, line, n);
    fatal_exit::exit_now(1);
}

}  // namespace

SigbusGuard::SigbusGuard(const GuestMemory& memory) {
    size_t i = 0;
    for (const auto& r : memory.regions()) {
        if (i == kMaxRanges) break;
        auto begin = reinterpret_cast<uintptr_t>(r.mapping.data());
        g_end[i].store(0, std::memory_order_release);
        g_begin[i].store(begin, std::memory_order_release);
        g_end[i].store(begin + r.size(), std::memory_order_release);
        ++i;
    }
    struct sigaction sa{};
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO;
    ::sigaction(SIGBUS, &sa, nullptr);
}

SigbusGuard::~SigbusGuard() {
    for (size_t i = 0; i < kMaxRanges; ++i) {
        g_end[i].store(0, std::memory_order_release);
        g_begin[i].store(0, std::memory_order_release);
    }
}

bool SigbusGuard::guards(const void* addr) {
    return in_guarded_range(reinterpret_cast<uintptr_t>(addr));
}

}  // namespace ember
