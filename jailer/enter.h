// The jailer's last steps before exec, in the process that becomes ember: join the network
// namespace, take a mount namespace of its own whose root is the jail, and drop to the jail's
// uid and gid.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "core/base/error.h"

namespace ember::jailer {

// setns() into the namespace at `netns_path` (e.g. /var/run/netns/fn0).
Result<void> join_netns(const std::string& netns_path);

// unshare(CLONE_NEWNS), nothing propagating back to the host, then `chroot_dir` bound onto
// itself becomes / (pivot_root), the old root is unmounted and the working directory is /.
// Each of `host_files` (absolute) appears at the same path inside, a read-only bind mount onto an
// empty file the call makes: the binds live in the jail's mount namespace and go with it.
Result<void> enter_root(const std::string& chroot_dir,
                        const std::vector<std::string>& host_files = {});

// setgroups(none), setgid, setuid: for good, so ember cannot get root back.
Result<void> drop_to(uid_t uid, gid_t gid);

}  // namespace ember::jailer
