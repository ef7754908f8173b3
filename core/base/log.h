// The process's log: one line per event on stderr (or the --log-path / PUT /logger sink), laid out
// as Firecracker lays out its lines, so the tools that read those read ours:
//   2026-11-26T11:35:59.123456789 [anonymous-instance:ember_api:INFO] message
// (the time in UTC: a time zone is a file lookup the threads' seccomp filters forbid). The level
// and sink are process-wide, like Firecracker's LOGGER: every thread logs, and threading a logger
// through every constructor would buy nothing but noise. Writing never blocks: a sink that cannot
// take a line now (a pipe or FIFO nobody drains, a full disk) loses it, and the loss is counted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <source_location>
#include <string>
#include <string_view>

#include "core/base/error.h"

namespace ember::log {

// Off drops every line but always()'s.
enum class Level { Off = -1, Error = 0, Warn = 1, Info = 2, Debug = 3 };

// A line longer than this is cut (and says so): one write(2) of at most PIPE_BUF bytes lands whole
// in a pipe or FIFO, or not at all, so a reader never sees half a line.
inline constexpr size_t kMaxLine = 4096;

// A level named as Firecracker names them: any case, Warn or Warning, Trace (taken as Debug), Off.
Result<Level> parse_level(std::string_view name);
// The name Firecracker's PUT /logger takes for it ("Warning" for Warn).
std::string_view name_of(Level level);
void set_level(Level level);
Level level();

// What each line's bracket shows besides the instance and the thread: the level (on unless
// PUT /logger's show_level says false) and the origin, file:line (show_log_origin).
void set_show_level(bool show);
void set_show_origin(bool show);
// The microVM's --id, shown in every line; set once, before any other thread starts.
void set_instance_id(std::string_view id);
// The calling thread's name in its lines ("ember_api", "fc_vcpu 0"); at most 15 characters kept.
void set_thread_name(std::string_view name);

// Makes stderr a sink that never blocks, without touching the descriptor ember shares with whoever
// started it where it can help it: a pipe, FIFO or terminal is opened afresh, non-blocking, through
// /proc/self/fd/2; a regular file is left as it is. A socket, or anything where /proc is missing
// (a jail), has stderr itself made non-blocking. Called once, early in main.
void detach_stderr();

// Sends log lines to `fd` from now on, through a descriptor of the log's own that dup3() points
// at it atomically: a line being written as the sink changes goes to the old file or the new one,
// never to a closed or reused descriptor. The caller keeps `fd` and may close it at once. -1
// restores stderr.
void set_fd(int fd);

// Lines lost so far, whole or in part (a full disk, a FIFO nobody reads): Firecracker's
// logger.missed_log_count.
uint64_t missed_lines();

// For a signal handler's one line: writes the line's "<time> [<id>:<thread>:<LEVEL>] " start into
// `out` (at most `size` bytes) and returns its length; then write_raw() sends the whole line.
// Both are async-signal-safe: no allocation, no lock.
size_t format_prefix(char* out, size_t size, Level level);
// Pieces of such a line: `text`, or `value` in decimal, written at `at` and never past `end`;
// each returns the new end. Async-signal-safe too.
char* append(char* at, char* end, std::string_view text);
char* append_number(char* at, char* end, int64_t value);
void write_raw(const char* line, size_t size);

// `text` as a line would show it: control characters as escapes ("\n", "\x1b"). For text a
// signal handler writes later, escaped ahead of time.
std::string escape(std::string_view text);

void write(Level level, std::string_view message,
           std::source_location origin = std::source_location::current());
// Whatever the level: for the one status line ember prints as it exits.
void always(std::string_view message,
            std::source_location origin = std::source_location::current());
inline void error(std::string_view m, std::source_location o = std::source_location::current()) {
    write(Level::Error, m, o);
}
inline void warn(std::string_view m, std::source_location o = std::source_location::current()) {
    write(Level::Warn, m, o);
}
inline void info(std::string_view m, std::source_location o = std::source_location::current()) {
    write(Level::Info, m, o);
}
inline void debug(std::string_view m, std::source_location o = std::source_location::current()) {
    write(Level::Debug, m, o);
}

}  // namespace ember::log
