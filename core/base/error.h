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

inline std::unexpected<Error> fail(std::string message) {
    return std::unexpected(Error{std::move(message)});
}

// r's error with `context` before it, to return from a function of another Result type.
template <typename T>
std::unexpected<Error> wrap_error(Result<T>&& r, std::string_view context) {
    return std::unexpected(std::move(r.error()).wrap(context));
}

// Stores `value` in `out`, or hands back its error: `EMBER_TRY(assign(parse(x), field));`.
template <typename T, typename U>
Result<void> assign(Result<T> value, U& out) {
    if (!value) return std::unexpected(std::move(value.error()));
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

// The one early return: `EMBER_TRY(step());` returns step()'s error from a function returning any
// Result (or std::expected with the same error type).
#define EMBER_TRY(expr)                                                \
    do {                                                               \
        if (auto _r = (expr); !_r) return std::unexpected(_r.error()); \
    } while (0)
