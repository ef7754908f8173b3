#include "tests/support/pids_cgroup.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

namespace ember::testing {
namespace {

bool exists(const std::string& path) {
    struct stat st{};
    return ::stat(path.c_str(), &st) == 0;
}

}  // namespace

Result<PidsCgroup> PidsCgroup::create() {
    std::string root;
    if (exists("/sys/fs/cgroup/cgroup.controllers")) {
        root = "/sys/fs/cgroup";
        // The pids controller must be enabled for children of the root; harmless when it is.
        std::ofstream control(root + "/cgroup.subtree_control");
        control << "+pids";
    } else if (exists("/sys/fs/cgroup/pids/cgroup.procs")) {
        root = "/sys/fs/cgroup/pids";
    } else {
        return fail("no pids cgroup controller is mounted under /sys/fs/cgroup");
    }
    std::string dir = root + "/ember-test-" + std::to_string(::getpid());
    if (::mkdir(dir.c_str(), 0755) < 0 && errno != EEXIST) return fail_errno("mkdir " + dir);
    if (!exists(dir + "/pids.max")) {
        ::rmdir(dir.c_str());
        return fail(root + ": the pids controller is not available to child cgroups");
    }
    return PidsCgroup(dir);
}

PidsCgroup::~PidsCgroup() {
    if (!dir_.empty()) ::rmdir(dir_.c_str());  // empty once the processes in it have exited
}

Result<void> PidsCgroup::write(const std::string& file, const std::string& value) const {
    std::ofstream out(dir_ + "/" + file);
    out << value;
    out.flush();
    if (!out) return fail("cannot write '" + value + "' to " + dir_ + "/" + file);
    return {};
}

Result<void> PidsCgroup::add(pid_t pid) const {
    return write("cgroup.procs", std::to_string(pid));
}

Result<long> PidsCgroup::current() const {
    std::ifstream in(dir_ + "/pids.current");
    long n = -1;
    if (!(in >> n)) return fail("cannot read " + dir_ + "/pids.current");
    return n;
}

Result<void> PidsCgroup::set_max(long tasks) const {
    return write("pids.max", std::to_string(tasks));
}

Result<void> PidsCgroup::set_unlimited() const {
    return write("pids.max", "max");
}

}  // namespace ember::testing
