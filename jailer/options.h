// ember-jailer's command line: Firecracker's jailer flags, checked before anything is touched, so
// that a bad flag leaves nothing behind.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/base/error.h"

namespace ember::jailer {

struct ResourceLimit {
    int resource;  // RLIMIT_FSIZE or RLIMIT_NOFILE
    uint64_t value;
};

struct CgroupValue {
    std::string file;  // "cpuset.cpus": the controller is what comes before the first '.'
    std::string value;
};

struct JailerOptions {
    std::string id;
    std::string exec_file;  // absolute; its file name starts with "ember"
    uid_t uid = 0;
    gid_t gid = 0;
    std::string chroot_base_dir = "/srv/jailer";
    std::optional<std::string> netns;  // a namespace handle to join, e.g. /var/run/netns/fn0
    bool daemonize = false;
    bool new_pid_ns = false;
    int cgroup_version = 1;
    std::vector<CgroupValue> cgroups;
    std::string parent_cgroup;  // relative; the exec file's name unless given
    std::vector<ResourceLimit> resource_limits;
    // --keep-fd: one inherited descriptor passed on to ember (ember's --ready-fd, say); every
    // other from 3 up is closed.
    std::optional<int> keep_fd;
    std::vector<std::string> exec_args;  // after "--", for ember

    // The exec file's name: the jail is <chroot_base_dir>/<exec_name>/<id>/root.
    std::string exec_name() const;
    std::string chroot_dir() const;
};

// Firecracker's flags, plus --allow-root (uid or gid 0 is refused without it: a jailed ember
// running as root would defeat the jail) and --keep-fd. Checks the syntax and every rule that
// needs no file system; check_exec_file() looks at the file.
Result<JailerOptions> parse_options(std::span<const std::string> args);

// The exec file exists, is a regular file and is executable.
Result<void> check_exec_file(const std::string& path);

}  // namespace ember::jailer
