// The microVM's cgroup, made and joined before ember runs, on either hierarchy version, as
// Firecracker's jailer does:
//   v1: for each --cgroup file the hierarchy mounted with its controller (cpuset.cpus: the one
//       with "cpuset") gets <mount>/<parent_cgroup>/<id>; the value is written there and the
//       process joins it (tasks).
//   v2: with values, <mount>/<parent_cgroup>/<id> on the unified hierarchy, the controllers they
//       need enabled on the way down (cgroup.subtree_control), then cgroup.procs. Without values
//       the process joins <mount>/<parent_cgroup> if that exists, and nothing happens otherwise.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "core/base/error.h"
#include "jailer/options.h"

namespace ember::jailer {

struct CgroupMount {
    std::string path;
    int version;                           // 1 or 2
    std::vector<std::string> controllers;  // v1: from the mount options
};

// The cgroup mounts in /proc/mounts' format.
std::vector<CgroupMount> parse_cgroup_mounts(const std::string& proc_mounts);

// Makes the cgroup(s), writes the values and moves `pid` in. Every mount needed must exist
// (checked before anything is made); on error, directories this call made are removed.
Result<void> join_cgroups(const JailerOptions& o, const std::vector<CgroupMount>& mounts,
                          pid_t pid);

}  // namespace ember::jailer
