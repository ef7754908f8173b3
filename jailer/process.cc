#include "jailer/process.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/resource.h>
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
    const int flags = ::fcntl(*keep, F_GETFD);
    if (flags < 0) return fail_errno("--keep-fd " + std::to_string(*keep));
    if (::fcntl(*keep, F_SETFD, flags & ~FD_CLOEXEC) < 0)
        return fail_errno("--keep-fd " + std::to_string(*keep));
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
