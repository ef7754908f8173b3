// The jail's file system, made before the jailer enters it: <chroot_dir> holds a copy of ember
// (its own inode, so it shares no pages with another VM's ember) and the device nodes ember opens,
// owned by the jail's uid and gid.
#pragma once

#include <string>

#include "core/base/error.h"
#include "jailer/options.h"

namespace ember::jailer {

// The outermost directory on the way to `dir` that does not exist yet, "" when `dir` does: what a
// failed start removes, so that it leaves nothing behind.
std::string outermost_missing_dir(const std::string& dir);

// Copies the exec file into o.chroot_dir() and makes /dev/kvm, /dev/net/tun, /dev/urandom and,
// where the host has one, /dev/userfaultfd. A jail that already holds the exec file is refused:
// ids are unique, and another VM may be running from it. On error nothing it made is left.
Result<void> build_jail(const JailerOptions& o);

}  // namespace ember::jailer
