#include "core/base/log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

namespace ember::log {
namespace {

std::atomic<Level> g_level{Level::Info};
std::atomic<bool> g_show_level{true};
std::atomic<bool> g_show_origin{false};
std::atomic<int> g_fd{STDERR_FILENO};
// stderr as detach_stderr() left it: where set_fd(-1) goes back to.
std::atomic<int> g_stderr_fd{STDERR_FILENO};
std::mutex g_sink_mutex;  // serialises set_fd; writers never take it
std::atomic<uint64_t> g_missed{0};
int g_stderr_flags = -1;  // stderr's own flags, where detach_stderr() had to change them
// Written before other threads start (set_instance_id), read-only after.
char g_instance[65] = "anonymous-instance";
thread_local char t_thread[16] = "-";

constexpr const char* kNames[] = {"ERROR", "WARN", "INFO", "DEBUG"};

// `value` in exactly `digits` decimal digits.
char* put_digits(char* at, char* end, uint64_t value, int digits) {
    if (end - at < digits) return at;
    for (int i = digits - 1; i >= 0; --i) {
        at[i] = static_cast<char>('0' + value % 10);
        value /= 10;
    }
    return at + digits;
}

// The civil date of a day count from 1970-01-01 (Howard Hinnant's days_from_civil, inverted):
// no time zone, no library call.
struct Date {
    int64_t year;
    unsigned month, day;
};
Date civil_from_days(int64_t days) {
    days += 719468;
    const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    const auto doe = static_cast<unsigned>(days - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    const unsigned day = doy - (153 * mp + 2) / 5 + 1;
    const unsigned month = mp < 10 ? mp + 3 : mp - 9;
    return {static_cast<int64_t>(yoe) + era * 400 + (month <= 2), month, day};
}

// This repository's root as the compiler named this file: stripped from every origin shown.
std::string_view source_root() {
    static constexpr std::string_view kSelf = "core/base/log.cc";
    const std::string_view here = std::source_location::current().file_name();
    return here.ends_with(kSelf) ? here.substr(0, here.size() - kSelf.size()) : std::string_view();
}

size_t prefix(char* out, size_t size, Level level, const std::source_location* origin) {
    char* at = out;
    char* const end = out + size;
    timespec now{};
    ::clock_gettime(CLOCK_REALTIME, &now);
    const int64_t secs = now.tv_sec;
    const int64_t days = (secs >= 0 ? secs : secs - 86399) / 86400;
    const auto of_day = static_cast<uint64_t>(secs - days * 86400);
    const Date date = civil_from_days(days);
    at = put_digits(at, end, static_cast<uint64_t>(std::max<int64_t>(date.year, 0)), 4);
    at = append(at, end, "-");
    at = put_digits(at, end, date.month, 2);
    at = append(at, end, "-");
    at = put_digits(at, end, date.day, 2);
    at = append(at, end, "T");
    at = put_digits(at, end, of_day / 3600, 2);
    at = append(at, end, ":");
    at = put_digits(at, end, of_day / 60 % 60, 2);
    at = append(at, end, ":");
    at = put_digits(at, end, of_day % 60, 2);
    at = append(at, end, ".");
    at = put_digits(at, end, static_cast<uint64_t>(now.tv_nsec), 9);
    at = append(at, end, " [");
    // Bounded even if a signal lands while a name is being written.
    at = append(at, end, std::string_view(g_instance, ::strnlen(g_instance, sizeof g_instance)));
    at = append(at, end, ":");
    at = append(at, end, std::string_view(t_thread, ::strnlen(t_thread, sizeof t_thread)));
    if (g_show_level.load(std::memory_order_relaxed)) {
        at = append(at, end, ":");
        at = append(at, end, kNames[std::clamp(static_cast<int>(level), 0, 3)]);
    }
    if (origin != nullptr && g_show_origin.load(std::memory_order_relaxed)) {
        std::string_view file = origin->file_name();
        if (const std::string_view root = source_root(); !root.empty() && file.starts_with(root))
            file.remove_prefix(root.size());
        // A build through ccache's base_dir names files relative to its build directory; an object
        // from such a cache may sit beside ones that name theirs in full.
        while (file.starts_with("../")) file.remove_prefix(3);
        at = append(at, end, ":");
        at = append(at, end, file);
        at = append(at, end, ":");
        at = append_number(at, end, origin->line());
    }
    at = append(at, end, "] ");
    return static_cast<size_t>(at - out);
}

// How `c` is written in a line: itself, or, for a control character, an escape ("\n", "\x1b"),
// so that no string from outside (a path in a config file, an --id) can end a line and forge
// the next, wherever it entered. Its length, at most 4, in `out`.
size_t escaped(char c, char* out) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u != 0x7f) {
        out[0] = c;
        return 1;
    }
    out[0] = '\\';
    switch (c) {
        case '\n': out[1] = 'n'; return 2;
        case '\r': out[1] = 'r'; return 2;
        case '\t': out[1] = 't'; return 2;
        default: break;
    }
    static constexpr char kHex[] = "0123456789abcdef";
    out[1] = 'x';
    out[2] = kHex[u >> 4];
    out[3] = kHex[u & 0xf];
    return 4;
}

void emit(Level level, std::string_view message, const std::source_location& origin) {
    static constexpr std::string_view kCut = " [cut]\n";
    char line[kMaxLine];
    // The prefix leaves room for the cut marker, whatever its length.
    const size_t head = prefix(line, sizeof line - kCut.size() - 1, level, &origin);
    const size_t end = sizeof line - 1;             // room for the newline
    const size_t cut_at = end - (kCut.size() - 1);  // room for the marker instead
    size_t size = head, fits_marker = head, taken = 0;
    char piece[4];
    for (; taken < message.size(); ++taken) {
        const size_t n = escaped(message[taken], piece);
        if (size + n > end) break;
        std::memcpy(line + size, piece, n);
        size += n;
        if (size <= cut_at) fits_marker = size;
    }
    if (taken < message.size()) {
        size = fits_marker;
        std::memcpy(line + size, kCut.data(), kCut.size());
        size += kCut.size();
    } else {
        line[size++] = '\n';
    }
    write_raw(line, size);
}

}  // namespace

std::string_view name_of(Level level) {
    switch (level) {
        case Level::Off: return "Off";
        case Level::Error: return "Error";
        case Level::Warn: return "Warning";
        case Level::Info: return "Info";
        case Level::Debug: return "Debug";
    }
    return "Info";
}

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

std::string escape(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    char piece[4];
    for (char c : text) out.append(piece, escaped(c, piece));
    return out;
}

void set_level(Level level) {
    g_level.store(level, std::memory_order_relaxed);
}
Level level() {
    return g_level.load(std::memory_order_relaxed);
}
void set_show_level(bool show) {
    g_show_level.store(show, std::memory_order_relaxed);
}
void set_show_origin(bool show) {
    g_show_origin.store(show, std::memory_order_relaxed);
}
void set_instance_id(std::string_view id) {
    // Escaped as a message is: an --id cannot end a line either.
    size_t n = 0;
    char piece[4];
    for (char c : id) {
        const size_t k = escaped(c, piece);
        if (n + k > sizeof g_instance - 1) break;
        std::memcpy(g_instance + n, piece, k);
        n += k;
    }
    g_instance[n] = '\0';
}
void set_thread_name(std::string_view name) {
    const size_t n = std::min(name.size(), sizeof t_thread - 1);
    std::memcpy(t_thread, name.data(), n);
    t_thread[n] = '\0';
}
uint64_t missed_lines() {
    return g_missed.load(std::memory_order_relaxed);
}

void detach_stderr() {
    std::lock_guard lock(g_sink_mutex);
    struct stat st{};
    if (::fstat(STDERR_FILENO, &st) < 0 || S_ISREG(st.st_mode)) return;
    if (!S_ISSOCK(st.st_mode)) {
        // A new open file description of the same pipe or terminal: its O_NONBLOCK is ours alone.
        const int fresh = ::open("/proc/self/fd/2", O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fresh >= 0) {
            const int own = ::fcntl(fresh, F_DUPFD_CLOEXEC, 3);
            ::close(fresh);
            if (own >= 0) {
                g_stderr_fd = own;
                g_fd = own;
                return;
            }
        }
    }
    // A socket cannot be opened afresh, and without /proc nothing can: the descriptor ember was
    // given is made non-blocking itself, and given back as it was when ember exits, since whoever
    // shares it (a shell's terminal, a journal's socket) expects it so.
    g_stderr_flags = ::fcntl(STDERR_FILENO, F_GETFL);
    if (g_stderr_flags >= 0 && ::fcntl(STDERR_FILENO, F_SETFL, g_stderr_flags | O_NONBLOCK) == 0)
        std::atexit([] { ::fcntl(STDERR_FILENO, F_SETFL, g_stderr_flags); });
}

void set_fd(int fd) {
    std::lock_guard lock(g_sink_mutex);
    const int target = fd < 0 ? g_stderr_fd.load() : fd;
    static int own = -1;  // guarded by g_sink_mutex
    if (own < 0) {
        // The first redirection: a descriptor of our own, kept for the process's lifetime.
        own = ::fcntl(target, F_DUPFD_CLOEXEC, 3);
        if (own < 0) return;
    } else if (::dup3(target, own, O_CLOEXEC) < 0) {
        return;
    }
    g_fd.store(own, std::memory_order_relaxed);
}

char* append(char* at, char* end, std::string_view text) {
    const size_t n = std::min(text.size(), static_cast<size_t>(end - at));
    std::memcpy(at, text.data(), n);
    return at + n;
}

char* append_number(char* at, char* end, int64_t value) {
    if (value < 0 && at < end) *at++ = '-';
    const uint64_t magnitude =
        value < 0 ? ~static_cast<uint64_t>(value) + 1 : static_cast<uint64_t>(value);
    int digits = 1;
    for (uint64_t v = magnitude; v >= 10; v /= 10) ++digits;
    return put_digits(at, end, magnitude, digits);
}

size_t format_prefix(char* out, size_t size, Level level) {
    return prefix(out, size, level, nullptr);
}

void write_raw(const char* line, size_t size) {
    // One call per line, so lines from different threads never interleave.
    const ssize_t n = ::write(g_fd.load(std::memory_order_relaxed), line, size);
    if (n != static_cast<ssize_t>(size)) g_missed.fetch_add(1, std::memory_order_relaxed);
}
void write(Level lvl, std::string_view message, std::source_location origin) {
    if (lvl > level()) return;
    emit(lvl, message, origin);
}

void always(std::string_view message, std::source_location origin) {
    emit(Level::Info, message, origin);
}

}  // namespace ember::log
