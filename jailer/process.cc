#include "jailer/process.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace ember::jailer {

Result<void> close_inherited_fds(std::optional<int> keep) {
    auto close_range = [](unsigned first, unsigned last) -> Result<void> {
        if (first <= last && ::syscall(SYS_close_range, first, last, 0u) < 0)
            return fail_errno("close_range");
        return {};
    };
    if (!keep) return close_range(3, ~0u);
    const std::string what = "--keep-fd " + std::to_string(*keep);
    struct stat st{};
    if (::fstat(*keep, &st) != 0) return fail_errno(what);
    // A directory or file descriptor would reach the host's file system from inside the jail.
    if (!S_ISFIFO(st.st_mode) && !S_ISSOCK(st.st_mode))
        return fail(what + ": not a pipe or socket (nothing else is passed into a jail)");
    const int flags = ::fcntl(*keep, F_GETFD);
    if (flags < 0 || ::fcntl(*keep, F_SETFD, flags & ~FD_CLOEXEC) < 0) return fail_errno(what);
    const auto kept = static_cast<unsigned>(*keep);
    EMBER_TRY(close_range(3, kept - 1));
    return close_range(kept + 1, ~0u);
}

void clear_environment() {
    ::clearenv();
}

Result<void> apply_resource_limits(const std::vector<ResourceLimit>& limits) {
    std::vector<ResourceLimit> effective = limits;
    bool no_file_given = false;
    for (const auto& l : limits) no_file_given |= l.resource == RLIMIT_NOFILE;
    if (!no_file_given) effective.insert(effective.begin(), {RLIMIT_NOFILE, 2048});
    for (const auto& l : effective) {
        rlimit r{static_cast<rlim_t>(l.value), static_cast<rlim_t>(l.value)};
        if (::setrlimit(l.resource, &r) < 0)
            return fail_errno(std::string("setrlimit ") +
                              (l.resource == RLIMIT_FSIZE ? "fsize" : "no-file"));
    }
    return {};
}

}  // namespace ember::jailer
