#include "jailer/enter.h"

#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <map>

#include "core/base/unique_fd.h"
#include "jailer/beneath.h"

namespace ember::jailer {

Result<void> join_netns(const std::string& netns_path) {
    UniqueFd ns(::open(netns_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!ns.valid()) return fail_errno("--netns " + netns_path);
    if (::setns(ns.get(), CLONE_NEWNET) < 0) return fail_errno("setns " + netns_path);
    return {};
}

namespace {

// `dirs` keeps each directory opened once: most libraries share one.
Result<void> bind_read_only(const std::string& chroot_dir, const std::string& host_file,
                            std::map<std::string, UniqueFd>& dirs) {
    const std::string target = chroot_dir + host_file;
    const auto slash = host_file.rfind('/');
    const std::string parent = host_file.substr(0, slash);
    auto it = dirs.find(parent);
    if (it == dirs.end()) {
        auto opened = open_dirs_beneath(chroot_dir, parent);
        EMBER_TRY(opened);
        it = dirs.emplace(parent, std::move(*opened)).first;
    }
    const UniqueFd* dir = &it->second;
    const std::string name = host_file.substr(slash + 1);
    UniqueFd placeholder(
        ::openat(dir->get(), name.c_str(), O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0444));
    if (!placeholder.valid()) return fail_errno(target);
    // The mount goes onto the file just opened, not onto whatever the path names by now.
    const std::string onto = "/proc/self/fd/" + std::to_string(placeholder.get());
    if (::mount(host_file.c_str(), onto.c_str(), nullptr, MS_BIND, nullptr) < 0)
        return fail_errno("binding " + host_file + " into the jail");
    // A bind takes the flags it is asked for only on a remount, of the mount now on top.
    UniqueFd bound(::openat(dir->get(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!bound.valid()) return fail_errno(target);
    const std::string top = "/proc/self/fd/" + std::to_string(bound.get());
    if (::mount(nullptr, top.c_str(), nullptr,
                MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr) < 0)
        return fail_errno("making " + target + " read-only");
    return {};
}

}  // namespace

Result<void> enter_root(const std::string& chroot_dir, const std::vector<std::string>& host_files) {
    if (::unshare(CLONE_NEWNS) < 0) return fail_errno("unshare(CLONE_NEWNS)");
    // Slave-less: no mount made in the jail reaches the host, and none of the host's later
    // mounts reach the jail.
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0)
        return fail_errno("making / private");
    // pivot_root wants the new root to be a mount point.
    if (::mount(chroot_dir.c_str(), chroot_dir.c_str(), nullptr, MS_BIND | MS_REC, nullptr) < 0)
        return fail_errno("bind-mounting " + chroot_dir);
    // From here a failure takes the jail's mounts away again (in this private namespace only), so
    // that the jailer can remove what it made of the jail.
    auto undo = [&](Error e) -> Result<void> {
        ::umount2(chroot_dir.c_str(), MNT_DETACH);
        return std::unexpected(std::move(e));
    };
    std::map<std::string, UniqueFd> dirs;
    for (const auto& f : host_files)
        if (auto r = bind_read_only(chroot_dir, f, dirs); !r) return undo(r.error());
    if (::chdir(chroot_dir.c_str()) < 0) return undo(fail_errno("chdir " + chroot_dir).error());
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
