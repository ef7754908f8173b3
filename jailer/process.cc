#include "jailer/process.h"

#include <linux/close_range.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>

namespace ember::jailer {

Result<void> close_inherited_fds() {
    if (::syscall(SYS_close_range, 3u, ~0u, 0u) < 0) return fail_errno("close_range");
    return {};
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
