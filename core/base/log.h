// The process's log: one line per event on stderr (or the --log-path file), "ember: <level>: ...".
// The level and sink are process-wide, like Firecracker's LOGGER: every thread logs, and threading
// a logger through every constructor would buy nothing but noise.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/base/error.h"

namespace ember::log {

// Off drops every line but always()'s.
enum class Level { Off = -1, Error = 0, Warn = 1, Info = 2, Debug = 3 };

// A level named as Firecracker names them: any case, Warn or Warning, Trace (taken as Debug), Off.
Result<Level> parse_level(std::string_view name);
void set_level(Level level);
Level level();
// Sends log lines to `fd` from now on, through a descriptor of the log's own that dup3() points
// at it atomically: a line being written as the sink changes goes to the old file or the new one,
// never to a closed or reused descriptor. The caller keeps `fd` and may close it at once. -1
// restores stderr.
void set_fd(int fd);

// The descriptor lines go to now: for a signal handler's one write().
int fd();

// Lines lost so far, whole or in part (a full disk, a FIFO nobody reads): Firecracker's
// logger.missed_log_count.
uint64_t missed_lines();

void write(Level level, std::string_view message);
// Whatever the level: for the one status line ember prints as it exits.
void always(std::string_view message);
inline void error(std::string_view m) {
    write(Level::Error, m);
}
inline void warn(std::string_view m) {
    write(Level::Warn, m);
}
inline void info(std::string_view m) {
    write(Level::Info, m);
}
inline void debug(std::string_view m) {
    write(Level::Debug, m);
}

}  // namespace ember::log
