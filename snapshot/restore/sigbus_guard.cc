#include "snapshot/restore/sigbus_guard.h"

#include <signal.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>

#include "core/base/fatal_exit.h"
#include "core/base/log.h"
#include "core/base/signal_counts.h"

namespace ember::snapshot {
namespace {

// Read by the signal handler: lock-free atomics, and text written before any range is guarded.
constexpr size_t kMaxRanges = 4;
std::array<std::atomic<uintptr_t>, kMaxRanges> g_begin{};
std::array<std::atomic<uintptr_t>, kMaxRanges> g_end{};
std::array<std::atomic<uint64_t>, kMaxRanges> g_guest{};  // the guest address of g_begin
char g_failure[512] = {};

// The range holding `addr`, or kMaxRanges.
size_t guarded_range(uintptr_t addr) {
    for (size_t i = 0; i < kMaxRanges; ++i)
        if (addr >= g_begin[i].load(std::memory_order_acquire) &&
            addr < g_end[i].load(std::memory_order_acquire))
            return i;
    return kMaxRanges;
}

char* append_hex(char* at, char* end, uint64_t value) {
    char digits[18] = {'0', 'x'};
    int n = 0;
    char reversed[16];
    do {
        reversed[n++] = "0123456789abcdef"[value & 0xf];
        value >>= 4;
    } while (value != 0);
    for (int i = 0; i < n; ++i) digits[2 + i] = reversed[n - 1 - i];
    return log::append(at, end, std::string_view(digits, static_cast<size_t>(2 + n)));
}

void on_sigbus(int sig, siginfo_t* info, void*) {
    const auto addr = reinterpret_cast<uintptr_t>(info->si_addr);
    const size_t range = guarded_range(addr);
    if (range == kMaxRanges) {
        ::signal(sig, SIG_DFL);
        return;
    }
    signal_counts::count(SIGBUS);
    const uint64_t gpa = g_guest[range].load(std::memory_order_acquire) +
                         (addr - g_begin[range].load(std::memory_order_acquire));
    char line[log::kMaxLine];
    char* const end = line + sizeof line - 1;
    char* at = line + log::format_prefix(line, sizeof line - 1, log::Level::Error);
    at = log::append(at, end, "guest memory at ");
    at = append_hex(at, end, gpa);
    at = log::append(at, end, " could not be provided (ember's own access to it raised SIGBUS): ");
    at = log::append(at, end, std::string_view(g_failure, ::strnlen(g_failure, sizeof g_failure)));
    *at++ = '\n';
    log::write_raw(line, static_cast<size_t>(at - line));
    fatal_exit::exit_now(1);
}

}  // namespace

SigbusGuard::SigbusGuard(const GuestMemory& memory, std::string_view failure) {
    // Escaped here: the handler writes it as it is, and a path can hold a newline.
    const std::string text = log::escape(failure);
    const size_t n = std::min(text.size(), sizeof g_failure - 1);
    std::memcpy(g_failure, text.data(), n);
    g_failure[n] = '\0';
    size_t i = 0;
    for (const auto& r : memory.regions()) {
        if (i == kMaxRanges) break;
        auto begin = reinterpret_cast<uintptr_t>(r.mapping.data());
        g_end[i].store(0, std::memory_order_release);
        g_guest[i].store(r.guest_addr, std::memory_order_release);
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
    return guarded_range(reinterpret_cast<uintptr_t>(addr)) != kMaxRanges;
}

}  // namespace ember::snapshot
