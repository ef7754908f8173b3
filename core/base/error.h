// Errors as values: what crosses a module boundary is std::expected<T, Error>, with a message a
// user can act on, built up from the innermost cause outwards.
#pragma once

#include <cerrno>
#include <cstring>
#include <expected>
#include <string>
#include <string_view>
#include <utility>

namespace ember {

// The causes a caller branches on; everything else is Failed, told apart by its message only.
enum class ErrorKind : uint8_t {
    Failed,
    // The host lacks or forbids the facility asked for (ENOSYS, or EPERM from a seccomp profile
    // or a sysctl): a caller may fall back to another way.
    Unavailable,
    // The process (ESRCH) or file the call acted on is gone: there is nothing left to do for it.
    Gone,
    // The memory the call acted on is no longer mapped (a userfaultfd's ENOENT, or its EINVAL once
    // every registered range is gone): its process may be ending, which the caller checks.
    Unmapped,
};

struct Error {
    std::string message;
    ErrorKind kind = ErrorKind::Failed;

    // Prefixes context: Error{"No such file"}.wrap("drive 'rootfs'") -> "drive 'rootfs': No such
    // file". The kind stays.
    Error wrap(std::string_view context) && {
        return Error{std::string(context) + ": " + std::move(message), kind};
    }
};

template <typename T>
using Result = std::expected<T, Error>;

}  // namespace ember

namespace ember::detail {
inline Error propagated(Error e) {
    return e;
}
inline Error propagated(Error e, std::string_view context) {
    return std::move(e).wrap(context);
}
}  // namespace ember::detail

// The one early return. `EMBER_TRY(step());` returns step()'s error from a function returning any
// Result; `EMBER_TRY(step(), "kernel " + path);` returns it with that context before it. A Result
// kept for its value is checked the same way: `auto fd = open(...); EMBER_TRY(fd);`.
#define EMBER_TRY(expr, ...)                                                                     \
    do {                                                                                         \
        if (auto&& ember_try_ = (expr); !ember_try_)                                             \
            return std::unexpected(::ember::detail::propagated(std::move(ember_try_.error())     \
                                                                   __VA_OPT__(, ) __VA_ARGS__)); \
    } while (0)

namespace ember {

inline std::unexpected<Error> fail(std::string message) {
    return std::unexpected(Error{std::move(message)});
}

// Stores `value` in `out`, or hands back its error: `EMBER_TRY(assign(parse(x), field));`.
template <typename T, typename U>
Result<void> assign(Result<T> value, U& out) {
    EMBER_TRY(value);
    out = std::move(*value);
    return {};
}

// "<what>: <strerror(errno)>", capturing errno at the call.
inline std::unexpected<Error> fail_errno(std::string_view what, int err = errno) {
    return std::unexpected(Error{std::string(what) + ": " + std::strerror(err)});
}

// fail_errno(), of kind Unavailable when `err` says the host lacks or forbids the call.
inline std::unexpected<Error> fail_setup_errno(std::string_view what, int err = errno) {
    auto e = fail_errno(what, err);
    if (err == ENOSYS || err == EPERM) e.error().kind = ErrorKind::Unavailable;
    return e;
}

// An OS error as Firecracker (Rust's std::io::Error) words it, "No such file or directory (os
// error 2)": scripts written against Firecracker match on it.
inline std::string os_error(int err) {
    return std::string(std::strerror(err)) + " (os error " + std::to_string(err) + ")";
}

}  // namespace ember
