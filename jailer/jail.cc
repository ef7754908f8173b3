#include "jailer/jail.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <filesystem>

#include "core/base/file_io.h"
#include "core/base/unique_fd.h"
#include "jailer/beneath.h"

namespace ember::jailer {
namespace {

struct DeviceNode {
    const char* path;  // inside the jail, and on the host
    unsigned major, minor;
    bool fixed;  // a number Linux fixes (devices.txt); else taken from the host's node
};

// /dev/userfaultfd is a misc device whose minor is given out at boot.
constexpr DeviceNode kNodes[] = {
    {"/dev/kvm", 10, 232, true},
    {"/dev/net/tun", 10, 200, true},
    {"/dev/urandom", 1, 9, true},
    {"/dev/userfaultfd", 0, 0, false},
};

std::string file_name(const std::string& path) {
    auto slash = path.rfind('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

// A byte copy with the source's permission bits: a new inode, never a link.
Result<void> copy_file(const std::string& from, const std::string& to) {
    UniqueFd in(::open(from.c_str(), O_RDONLY | O_CLOEXEC));
    if (!in.valid()) return fail_errno(from);
    struct stat st{};
    if (::fstat(in.get(), &st) < 0) return fail_errno(from);
    UniqueFd out(::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, st.st_mode & 0777));
    if (!out.valid()) return fail_errno(to);
    // In the kernel, without a trip through user space; unlike copy_file_range, sendfile also
    // copies between file systems of different types (the jail may be on a tmpfs).
    for (off_t left = st.st_size; left > 0;) {
        ssize_t n = retry_on_eintr(
            [&] { return ::sendfile(out.get(), in.get(), nullptr, static_cast<size_t>(left)); });
        if (n < 0) return fail_errno("copying " + from + " to " + to);
        if (n == 0) return fail(from + ": shorter than it was when opened");
        left -= n;
    }
    // The mode again: open() applied the umask.
    if (::fchmod(out.get(), st.st_mode & 0777) < 0) return fail_errno(to);
    return {};
}

Result<void> make_node(const std::string& root, const DeviceNode& node, uid_t uid, gid_t gid,
                       std::vector<std::string>& made) {
    dev_t dev = ::makedev(node.major, node.minor);
    if (!node.fixed) {
        struct stat host{};
        if (::stat(node.path, &host) < 0 || !S_ISCHR(host.st_mode))
            return {};  // the host has none: neither does the jail
        dev = host.st_rdev;
    }
    const std::string relative = node.path + 1;
    const auto slash = relative.rfind('/');
    auto dir = open_dirs_beneath(root, relative.substr(0, slash));
    EMBER_TRY(dir);
    const std::string name = relative.substr(slash + 1);
    const std::string path = root + node.path;
    if (::mknodat(dir->get(), name.c_str(), S_IFCHR | 0600, dev) < 0)
        return fail_errno("mknod " + path);
    made.push_back(path);
    if (::fchownat(dir->get(), name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
        return fail_errno("chown " + path);
    return {};
}

// As in Firecracker's jail: ember owns its root, /dev, /dev/net and /run (for its API socket),
// and nobody else may look in.
constexpr const char* kOwnedDirs[] = {"", "/dev", "/dev/net", "/run"};

Result<void> fill(const JailerOptions& o, const std::string& root, std::vector<std::string>& made) {
    const std::string exec = root + "/" + file_name(o.exec_file);
    EMBER_TRY(copy_file(o.exec_file, exec));
    made.push_back(exec);
    for (const auto& node : kNodes) EMBER_TRY(make_node(root, node, o.uid, o.gid, made));
    for (const char* dir : kOwnedDirs) {
        const std::string path = root + dir;
        const bool existed = ::access(path.c_str(), F_OK) == 0;
        auto fd = open_dirs_beneath(root, dir);
        EMBER_TRY(fd);
        if (!existed) made.push_back(path);
        if (::fchown(fd->get(), o.uid, o.gid) < 0 || ::fchmod(fd->get(), 0700) < 0)
            return fail_errno(path);
    }
    return {};
}

}  // namespace

std::string outermost_missing_dir(const std::string& dir) {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::path missing;
    for (fs::path p = dir; !p.empty() && p != p.parent_path() && !fs::exists(p, ec);
         p = p.parent_path())
        missing = p;
    return missing.string();
}

namespace {

// The pid a jail's pid file holds is a live process. The file is the jail's, so it is read as
// hostile: never through a link, a few bytes at most.
bool pid_file_names_a_live_process(const std::filesystem::path& file) {
    UniqueFd fd(::open(file.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (!fd.valid()) return false;
    char text[16] = {};
    const ssize_t n = ::read(fd.get(), text, sizeof text - 1);
    if (n <= 0) return false;
    pid_t pid = 0;
    const auto [end, ec] = std::from_chars(text, text + n, pid);
    if (ec != std::errc() || pid <= 0) return false;
    return ::kill(pid, 0) == 0 || errno == EPERM;
}

}  // namespace

Result<void> build_jail(const JailerOptions& o) {
    namespace fs = std::filesystem;
    const fs::path root = o.chroot_dir();
    std::error_code ec;
    if (fs::exists(root / o.exec_name(), ec)) {
        if (pid_file_names_a_live_process(root / (o.exec_name() + ".pid")))
            return fail("the jail " + root.string() + " already holds " + o.exec_name() +
                        ": is microVM '" + o.id + "' running? Choose another --id");
        // A run whose ember failed after it started, or that ended without its jail being
        // removed (the host agent's job, as with Firecracker's jailer).
        return fail("the jail " + root.string() + " holds " + o.exec_name() +
                    " from a run that failed or has ended (no process lives at the pid in its " +
                    o.exec_name() + ".pid): remove " + o.chroot_dir() + " to use the id '" + o.id +
                    "' again");
    }
    const std::string outermost = outermost_missing_dir(root);
    fs::create_directories(root, ec);
    if (ec) return fail(root.string() + ": " + ec.message());
    std::vector<std::string> made;
    if (auto r = fill(o, root.string(), made); !r) {
        // Nothing half-made stays behind: the whole jail if this call made it, else what it added.
        if (!outermost.empty())
            fs::remove_all(outermost, ec);
        else
            for (auto it = made.rbegin(); it != made.rend(); ++it) fs::remove(*it, ec);
        return r;
    }
    return {};
}

}  // namespace ember::jailer
