#include "jailer/options.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "core/config/vm_config.h"

namespace ember::jailer {
namespace {

// Linux's default fs.nr_open: no process has a descriptor numbered higher.
constexpr uint64_t kMaxKeptFd = (1 << 20) - 1;

Result<uint64_t> whole_number(const std::string& flag, const std::string& text) {
    char* end = nullptr;
    errno = 0;
    unsigned long long n = std::strtoull(text.c_str(), &end, 10);
    if (text.empty() || text[0] == '-' || *end != '\0' || errno != 0)
        return fail(flag + ": '" + text + "' is not a whole number");
    return n;
}

// "name=value" with both parts non-empty.
Result<std::pair<std::string, std::string>> key_value(const std::string& flag,
                                                      const std::string& text) {
    auto eq = text.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == text.size())
        return fail(flag + ": '" + text + "' is not of the form name=value");
    return std::pair{text.substr(0, eq), text.substr(eq + 1)};
}

bool is_absolute(const std::string& path) {
    return !path.empty() && path[0] == '/';
}

bool has_dot_dot(const std::string& path) {
    size_t start = 0;
    while (start <= path.size()) {
        size_t end = path.find('/', start);
        if (end == std::string::npos) end = path.size();
        if (path.compare(start, end - start, "..") == 0) return true;
        start = end + 1;
    }
    return false;
}

}  // namespace

std::string JailerOptions::exec_name() const {
    auto slash = exec_file.rfind('/');
    return slash == std::string::npos ? exec_file : exec_file.substr(slash + 1);
}

std::string JailerOptions::chroot_dir() const {
    return chroot_base_dir + "/" + exec_name() + "/" + id + "/root";
}

Result<JailerOptions> parse_options(std::span<const std::string> args) {
    JailerOptions o;
    bool have_uid = false, have_gid = false, allow_root = false;
    std::optional<std::string> id, exec_file, parent_cgroup, base;
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& arg = args[i];
        if (arg == "--") {
            o.exec_args.assign(args.begin() + static_cast<ptrdiff_t>(i) + 1, args.end());
            break;
        }
        auto value = [&]() -> Result<std::string> {
            if (i + 1 >= args.size()) return fail(arg + ": needs a value");
            return args[++i];
        };
        auto once = [&](std::optional<std::string>& slot) -> Result<void> {
            if (slot) return fail(arg + ": given twice");
            auto v = value();
            EMBER_TRY(v);
            slot = *v;
            return {};
        };
        if (arg == "--id") {
            EMBER_TRY(once(id));
        } else if (arg == "--exec-file") {
            EMBER_TRY(once(exec_file));
        } else if (arg == "--chroot-base-dir") {
            EMBER_TRY(once(base));
        } else if (arg == "--netns") {
            EMBER_TRY(once(o.netns));
        } else if (arg == "--parent-cgroup") {
            EMBER_TRY(once(parent_cgroup));
        } else if (arg == "--uid" || arg == "--gid") {
            bool& have = arg == "--uid" ? have_uid : have_gid;
            if (have) return fail(arg + ": given twice");
            auto v = value();
            EMBER_TRY(v);
            auto n = whole_number(arg, *v);
            EMBER_TRY(n);
            if (*n > 0xfffffffeULL) return fail(arg + ": " + *v + " is not a valid id");
            (arg == "--uid" ? o.uid : o.gid) = static_cast<uint32_t>(*n);
            have = true;
        } else if (arg == "--cgroup-version") {
            auto v = value();
            EMBER_TRY(v);
            if (*v != "1" && *v != "2")
                return fail("--cgroup-version: must be 1 or 2, got '" + *v + "'");
            o.cgroup_version = *v == "1" ? 1 : 2;
        } else if (arg == "--cgroup") {
            auto v = value();
            EMBER_TRY(v);
            auto kv = key_value(arg, *v);
            EMBER_TRY(kv);
            const auto& file = kv->first;
            if (file.find('/') != std::string::npos || file.find('.') == std::string::npos ||
                file[0] == '.')
                return fail("--cgroup: '" + file +
                            "' is not a cgroup file name like cpuset.cpus or memory.max");
            o.cgroups.push_back({kv->first, kv->second});
        } else if (arg == "--resource-limit") {
            auto v = value();
            EMBER_TRY(v);
            auto kv = key_value(arg, *v);
            EMBER_TRY(kv);
            int resource;
            if (kv->first == "fsize")
                resource = RLIMIT_FSIZE;
            else if (kv->first == "no-file")
                resource = RLIMIT_NOFILE;
            else
                return fail("--resource-limit: unknown resource '" + kv->first +
                            "' (fsize or no-file)");
            auto n = whole_number(arg, kv->second);
            EMBER_TRY(n);
            o.resource_limits.push_back({resource, *n});
        } else if (arg == "--daemonize") {
            o.daemonize = true;
        } else if (arg == "--new-pid-ns") {
            o.new_pid_ns = true;
        } else if (arg == "--allow-root") {
            allow_root = true;
        } else if (arg == "--keep-fd") {
            if (o.keep_fd) return fail("--keep-fd: given twice");
            auto v = value();
            EMBER_TRY(v);
            auto n = whole_number(arg, *v);
            EMBER_TRY(n);
            if (*n < 3 || *n > kMaxKeptFd)
                return fail("--keep-fd: " + *v + " is not a descriptor above stdio (3 to " +
                            std::to_string(kMaxKeptFd) + ")");
            o.keep_fd = static_cast<int>(*n);
        } else {
            return fail("unknown argument '" + arg + "'");
        }
    }

    if (!id) return fail("--id: missing");
    if (!exec_file) return fail("--exec-file: missing");
    if (!have_uid) return fail("--uid: missing");
    if (!have_gid) return fail("--gid: missing");
    if (!is_valid_instance_id(*id))
        return fail("--id: '" + *id + "' must be 1-64 characters of A-Z, a-z, 0-9 or -");
    o.id = *id;
    if (!is_absolute(*exec_file)) return fail("--exec-file: '" + *exec_file + "' is not absolute");
    o.exec_file = *exec_file;
    if (o.exec_name().rfind("ember", 0) != 0)
        return fail("--exec-file: the file's name must start with 'ember', got '" + o.exec_name() +
                    "'");
    if ((o.uid == 0 || o.gid == 0) && !allow_root)
        return fail(
            "--uid/--gid: 0 would run ember as root inside the jail; pass --allow-root "
            "if that is meant");
    if (base) {
        if (!is_absolute(*base) || has_dot_dot(*base))
            return fail("--chroot-base-dir: '" + *base + "' must be absolute, without '..'");
        o.chroot_base_dir = *base;
    }
    if (o.netns && !is_absolute(*o.netns))
        return fail("--netns: '" + *o.netns + "' is not absolute");
    o.parent_cgroup = parent_cgroup.value_or(o.exec_name());
    if (o.parent_cgroup.empty() || is_absolute(o.parent_cgroup) || has_dot_dot(o.parent_cgroup))
        return fail("--parent-cgroup: '" + o.parent_cgroup +
                    "' must be a relative path without '..'");
    return o;
}

Result<void> check_exec_file(const std::string& path) {
    struct stat st{};
    if (::stat(path.c_str(), &st) < 0) return fail_errno("--exec-file: " + path);
    if (!S_ISREG(st.st_mode)) return fail("--exec-file: " + path + " is not a regular file");
    if (::access(path.c_str(), X_OK) < 0) return fail_errno("--exec-file: " + path);
    return {};
}

}  // namespace ember::jailer
