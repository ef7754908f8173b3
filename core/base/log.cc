#include "core/base/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <mutex>
#include <string>

namespace ember::log {
namespace {

std::atomic<Level> g_level{Level::Info};
std::atomic<int> g_fd{STDERR_FILENO};
std::mutex g_sink_mutex;  // serialises set_fd; writers never take it
std::atomic<uint64_t> g_missed{0};

constexpr std::string_view kNames[] = {"error", "warn", "info", "debug"};

}  // namespace

Result<Level> parse_level(std::string_view name) {
    std::string l;
    for (char c : name) l += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (l == "off") return Level::Off;
    if (l == "error") return Level::Error;
    if (l == "warning" || l == "warn") return Level::Warn;
    if (l == "info") return Level::Info;
    if (l == "debug" || l == "trace") return Level::Debug;
    // Appended rather than concatenated: GCC 12 at -O3 sees overlapping copies in "'" + name.
    std::string message = "'";
    message.append(name);
    message.append("' is not one of Off, Error, Warning, Info, Debug, Trace");
    return fail(std::move(message));
}

void set_level(Level level) {
    g_level.store(level, std::memory_order_relaxed);
}
Level level() {
    return g_level.load(std::memory_order_relaxed);
}
int fd() {
    return g_fd.load(std::memory_order_relaxed);
}
uint64_t missed_lines() {
    return g_missed.load(std::memory_order_relaxed);
}

void set_fd(int fd) {
    std::lock_guard lock(g_sink_mutex);
    const int target = fd < 0 ? STDERR_FILENO : fd;
    const int own = g_fd.load(std::memory_order_relaxed);
    if (own == STDERR_FILENO) {
        // The first redirection: a descriptor of our own, kept for the process's lifetime.
        const int dup = ::fcntl(target, F_DUPFD_CLOEXEC, 3);
        if (dup >= 0) g_fd.store(dup, std::memory_order_relaxed);
        return;
    }
    ::dup3(target, own, O_CLOEXEC);
}

namespace {

void emit(std::string_view prefix, std::string_view message) {
    std::string line = "ember: ";
    line += prefix;
    line += message;
    line += '\n';
    // One write(2) per line so lines from different threads never interleave. A FIFO sink is
    // non-blocking: a line its stalled reader cannot take now is dropped and counted, never
    // waited for.
    const ssize_t n = ::write(g_fd.load(std::memory_order_relaxed), line.data(), line.size());
    if (n != static_cast<ssize_t>(line.size())) g_missed.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

void write(Level lvl, std::string_view message) {
    if (lvl > level()) return;
    emit(std::string(kNames[static_cast<int>(lvl)]) + ": ", message);
}

void always(std::string_view message) {
    emit("", message);
}

}  // namespace ember::log
