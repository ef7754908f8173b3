#include "vmm/base/log.h"

#include <unistd.h>

#include <atomic>
#include <string>

namespace ember::log {
namespace {

std::atomic<Level> g_level{Level::Info};
std::atomic<int> g_fd{STDERR_FILENO};

constexpr std::string_view kNames[] = {"error", "warn", "info", "debug"};

}  // namespace

void set_level(Level level) {
    g_level.store(level, std::memory_order_relaxed);
}
Level level() {
    return g_level.load(std::memory_order_relaxed);
}
void set_fd(int fd) {
    g_fd.store(fd < 0 ? STDERR_FILENO : fd, std::memory_order_relaxed);
}

namespace {

void emit(std::string_view prefix, std::string_view message) {
    std::string line = "ember: ";
    line += prefix;
    line += message;
    line += '\n';
    // One write(2) per line so lines from different threads never interleave.
    [[maybe_unused]] ssize_t n =
        ::write(g_fd.load(std::memory_order_relaxed), line.data(), line.size());
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
