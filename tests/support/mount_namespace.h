// A mount namespace of the calling thread's own (and of the processes it starts from then on),
// which ends with them: a FUSE mount made in the host's by a test that its failsafe killed was
// left behind, its folder not removable and every later look at it failing.
#pragma once

#include <sched.h>
#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace ember::testing {

// Empty once in one, else why not.
inline std::string in_own_mount_namespace() {
    static const int err = [] {
        if (::unshare(CLONE_NEWNS) < 0) return errno;
        if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0) return errno;
        return 0;
    }();
    return err == 0 ? ""
                    : std::string("a mount namespace of the test's own: ") + std::strerror(err);
}

}  // namespace ember::testing
