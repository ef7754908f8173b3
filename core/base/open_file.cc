#include "core/base/open_file.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include <vector>

#include "core/base/file_io.h"

namespace ember {
namespace {

bool accepts(FileKinds kinds, mode_t mode) {
    switch (kinds) {
        case FileKinds::Regular: return S_ISREG(mode);
        case FileKinds::RegularOrBlockDevice: return S_ISREG(mode) || S_ISBLK(mode);
        case FileKinds::RegularOrFifo: return S_ISREG(mode) || S_ISFIFO(mode);
        case FileKinds::Any: return true;
    }
    return false;
}

const char* refusal(FileKinds kinds) {
    switch (kinds) {
        case FileKinds::RegularOrBlockDevice: return "not a regular file or block device";
        case FileKinds::RegularOrFifo: return "not a regular file or FIFO";
        default: return "not a regular file";
    }
}

// The kernel's own interfaces that look like files (S_ISREG, size 0): reading one is not reading a
// disk or a kernel, and writing one can be a command (/proc/sysrq-trigger, a cgroup's limits).
const char* kernel_interface(const UniqueFd& fd) {
    struct statfs fs{};
    if (::fstatfs(fd.get(), &fs) < 0) return nullptr;
    switch (static_cast<unsigned long>(fs.f_type)) {
        case PROC_SUPER_MAGIC: return "proc";
        case SYSFS_MAGIC: return "sysfs";
        case DEBUGFS_MAGIC: return "debugfs";
        case TRACEFS_MAGIC: return "tracefs";
        case SECURITYFS_MAGIC: return "securityfs";
        case CGROUP_SUPER_MAGIC: return "cgroup";
        case CGROUP2_SUPER_MAGIC: return "cgroup2";
        case BPF_FS_MAGIC: return "bpf";
        case PSTOREFS_MAGIC: return "pstore";
        case EFIVARFS_MAGIC: return "efivarfs";
        case SELINUX_MAGIC: return "selinuxfs";
        case SMACK_MAGIC: return "smackfs";
        case 0x62656570: return "configfs";  // CONFIGFS_MAGIC, not in linux/magic.h
        case 0x65735543: return "fusectl";   // FUSECTL_SUPER_MAGIC, likewise
        case BINFMTFS_MAGIC: return "binfmt_misc";
        default: return nullptr;
    }
}

}  // namespace

Result<UniqueFd> open_file(const std::string& path, int flags, FileKinds kinds, mode_t mode) {
    UniqueFd fd(::open(path.c_str(), flags | O_NONBLOCK | O_CLOEXEC, mode));
    if (!fd.valid()) {
        // What O_NONBLOCK makes of a FIFO opened for writing that nobody reads (or of a socket or
        // a device without its driver): never a regular file.
        if (errno == ENXIO && (flags & O_ACCMODE) == O_WRONLY) {
            if (kinds != FileKinds::RegularOrFifo && kinds != FileKinds::Any)
                return fail(refusal(kinds));
            return fail("a FIFO with no reader: " + os_error(ENXIO));
        }
        return fail(os_error(errno));
    }
    struct stat st{};
    if (::fstat(fd.get(), &st) < 0) return fail(os_error(errno));
    if (!accepts(kinds, st.st_mode)) return fail(refusal(kinds));
    if (const char* fs = kernel_interface(fd))
        return fail(std::string("a file of the kernel's ") + fs +
                    " interface (like /proc and /sys), not a file ember may use");
    if (!(flags & O_NONBLOCK)) {
        const int now = ::fcntl(fd.get(), F_GETFL);
        if (now < 0 || ::fcntl(fd.get(), F_SETFL, now & ~O_NONBLOCK) < 0)
            return fail(os_error(errno));
    }
    return fd;
}

Result<std::string> read_small_file(const std::string& path, size_t most) {
    auto fd = open_file(path, O_RDONLY);
    EMBER_TRY(fd, path);
    auto text = read_small(fd->get(), most);
    EMBER_TRY(text, path);
    return text;
}

Result<std::string> read_small(int fd, size_t most) {
    auto size = file_size(fd);
    EMBER_TRY(size);
    if (*size > most)
        return fail(std::to_string(*size) + " bytes is larger than the " + std::to_string(most) +
                    "-byte limit for this file");
    std::string text(*size, '\0');
    EMBER_TRY(pread_exact(fd, {reinterpret_cast<uint8_t*>(text.data()), text.size()}, 0));
    return text;
}

}  // namespace ember
