#include "jailer/enter.h"

#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vmm/base/unique_fd.h"

namespace ember::jailer {

Result<void> join_netns(const std::string& netns_path) {
    UniqueFd ns(::open(netns_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!ns.valid()) return fail_errno("--netns " + netns_path);
    if (::setns(ns.get(), CLONE_NEWNET) < 0) return fail_errno("setns " + netns_path);
    return {};
}

Result<void> enter_root(const std::string& chroot_dir) {
    if (::unshare(CLONE_NEWNS) < 0) return fail_errno("unshare(CLONE_NEWNS)");
    // Slave-less: no mount made in the jail reaches the host, and none of the host's later
    // mounts reach the jail.
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0)
        return fail_errno("making / private");
    // pivot_root wants the new root to be a mount point.
    if (::mount(chroot_dir.c_str(), chroot_dir.c_str(), nullptr, MS_BIND | MS_REC, nullptr) < 0)
        return fail_errno("bind-mounting " + chroot_dir);
    if (::chdir(chroot_dir.c_str()) < 0) return fail_errno("chdir " + chroot_dir);
    // pivot_root(".", ".") stacks the old root on top of the new one; unmounting "." then takes
    // the old root away without a directory for it in the jail.
    if (::syscall(SYS_pivot_root, ".", ".") < 0) return fail_errno("pivot_root");
    if (::umount2(".", MNT_DETACH) < 0) return fail_errno("unmounting the old root");
    if (::chdir("/") < 0) return fail_errno("chdir /");
    return {};
}

Result<void> drop_to(uid_t uid, gid_t gid) {
    if (::setgroups(0, nullptr) < 0) return fail_errno("setgroups");
    if (::setresgid(gid, gid, gid) < 0) return fail_errno("setgid " + std::to_string(gid));
    if (::setresuid(uid, uid, uid) < 0) return fail_errno("setuid " + std::to_string(uid));
    return {};
}

}  // namespace ember::jailer
