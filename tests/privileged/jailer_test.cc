// ember-jailer as a user runs it: ember started in its jail, as the jail's ids, in its own
// namespaces, cgroups and limits, serving its API inside the jail; and every bad flag refused
// with nothing left behind. No KVM needed: ember serves its API before any VM is made.
#include <elf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "core/base/unique_fd.h"
#include "jailer/cgroups.h"
#include "tests/support/ember_process.h"
#include "tests/support/netns.h"
#include "tests/support/uds_http.h"

namespace ember::testing {
namespace {

namespace fs = std::filesystem;

constexpr uid_t kUid = 54321;
constexpr gid_t kGid = 54322;

// Whether the program at `path` names a dynamic loader (PT_INTERP): a release build of ember is a
// static PIE and needs no library in its jail, a sanitizer build is linked dynamically.
bool loads_libraries(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    Elf64_Ehdr header{};
    in.read(reinterpret_cast<char*>(&header), sizeof header);
    for (int i = 0; in && i < header.e_phnum; ++i) {
        Elf64_Phdr ph{};
        in.seekg(static_cast<std::streamoff>(header.e_phoff + uint64_t{header.e_phentsize} * i));
        in.read(reinterpret_cast<char*>(&ph), sizeof ph);
        if (in && ph.p_type == PT_INTERP) return true;
    }
    return false;
}

std::string read(const fs::path& p) {
    std::ifstream in(p);
    std::string s((std::istreambuf_iterator<char>(in)), {});
    while (!s.empty() && s.back() == '\n') s.pop_back();
    return s;
}

// The line of /proc/<pid>/<file> that starts with `key`.
std::string proc_line(pid_t pid, const std::string& file, const std::string& key) {
    std::istringstream in(read("/proc/" + std::to_string(pid) + "/" + file));
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(key, 0) == 0) return line;
    return "";
}

ino_t inode(const std::string& path) {
    struct stat st{};
    return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

class JailedEmber : public ::testing::Test {
  protected:
    void TearDown() override {
        if (ember > 0) {
            // Not our child with --daemonize: its pidfd tells when it is gone.
            UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, ember, 0)));
            ::kill(ember, SIGKILL);
            ::waitpid(ember, nullptr, 0);
            if (pidfd.valid()) {
                pollfd p{pidfd.get(), POLLIN, 0};
                ::poll(&p, 1, static_cast<int>(std::chrono::milliseconds(kFailsafe).count()));
            }
        }
        for (const auto& m : jailer::parse_cgroup_mounts(read("/proc/mounts"))) {
            std::error_code ec;
            ::rmdir((fs::path(m.path) / parent_cgroup / "fn-1").c_str());
            ::rmdir((fs::path(m.path) / parent_cgroup).c_str());
        }
    }
    std::vector<std::string> jailer_args(std::vector<std::string> extra = {}) const {
        std::vector<std::string> args = {EMBER_JAILER,         "--id",       "fn-1",
                                         "--exec-file",        EMBER_BINARY, "--uid",
                                         std::to_string(kUid), "--gid",      std::to_string(kGid),
                                         "--chroot-base-dir",  base()};
        args.insert(args.end(), extra.begin(), extra.end());
        return args;
    }
    std::string base() const { return dir.path() + "/jails"; }
    std::string root() const { return base() + "/ember/fn-1/root"; }

    // Starts the jailer, which becomes ember; the API answering inside the jail shows it ready.
    void start(const std::vector<std::string>& extra) {
        fs::create_directories(base());
        auto args = jailer_args(extra);
        args.insert(args.end(), {"--", "--api-sock", "/run/api.sock"});
        log = dir.path() + "/ember.log";
        int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        ember = spawn(args, in, out, out);
        ::close(out);
        ::close(in);
        auto client = UdsHttpClient::connect(root() + "/run/api.sock");
        ASSERT_TRUE(client) << client.error().message << "\n" << read(log);
        auto reply = client->request("GET", "/");
        ASSERT_TRUE(reply) << reply.error().message;
        EXPECT_EQ(reply->status, 200);
        EXPECT_NE(reply->body.find(R"("id":"fn-1")"), std::string::npos) << reply->body;
    }

    TempDir dir;
    std::string log;
    std::string parent_cgroup = "ember-jailer-test-" + std::to_string(::getpid());
    pid_t ember = -1;
};

TEST_F(JailedEmber, ServesItsApiInsideTheJailAsTheJailsIdsWithItsLimits) {
    NetnsHolder netns;
    std::vector<std::string> extra = {"--netns",       netns.path(),      "--resource-limit",
                                      "fsize=1000000", "--parent-cgroup", parent_cgroup};
    const auto mounts = jailer::parse_cgroup_mounts(read("/proc/mounts"));
    bool v1_pids = false;
    for (const auto& m : mounts)
        for (const auto& c : m.controllers) v1_pids |= m.version == 1 && c == "pids";
    if (v1_pids) extra.insert(extra.end(), {"--cgroup", "pids.max=40"});
    start(extra);

    EXPECT_EQ(read(root() + "/ember.pid"), std::to_string(ember));
    const std::string ids_u = "Uid:\t" + std::to_string(kUid);
    EXPECT_EQ(proc_line(ember, "status", "Uid:"), ids_u + "\t" + std::to_string(kUid) + "\t" +
                                                      std::to_string(kUid) + "\t" +
                                                      std::to_string(kUid));
    EXPECT_EQ(proc_line(ember, "status", "Gid:").substr(0, 10), "Gid:\t" + std::to_string(kGid));
    EXPECT_EQ(proc_line(ember, "status", "Groups:").find_first_of("0123456789"), std::string::npos)
        << "no supplementary groups";
    EXPECT_EQ(proc_line(ember, "status", "CapEff:"), "CapEff:\t0000000000000000");

    const std::string ns = "/proc/" + std::to_string(ember) + "/ns/";
    EXPECT_NE(inode(ns + "mnt"), inode("/proc/self/ns/mnt")) << "a mount namespace of its own";
    EXPECT_EQ(inode(ns + "net"), inode(netns.path())) << "the --netns namespace";
    EXPECT_EQ(inode(ns + "pid"), inode("/proc/self/ns/pid")) << "no --new-pid-ns";

    std::set<std::string> seen;
    for (const auto& e : fs::directory_iterator("/proc/" + std::to_string(ember) + "/root"))
        seen.insert(e.path().filename().string());
    std::set<std::string> expected{"dev", "ember", "ember.pid", "run"};
    if (loads_libraries(EMBER_BINARY)) expected.insert({"lib", "lib64"});
    EXPECT_EQ(seen, expected) << "the jail is its root, with ember's libraries if it loads any";

    EXPECT_NE(proc_line(ember, "limits", "Max open files").find("2048                 2048"),
              std::string::npos)
        << proc_line(ember, "limits", "Max open files");
    EXPECT_NE(proc_line(ember, "limits", "Max file size").find("1000000              1000000"),
              std::string::npos)
        << proc_line(ember, "limits", "Max file size");
    if (v1_pids) {
        EXPECT_NE(read("/proc/" + std::to_string(ember) + "/cgroup")
                      .find("pids:/" + parent_cgroup + "/fn-1"),
                  std::string::npos);
    }
}

TEST_F(JailedEmber, JoinsACgroupV2AndItsValues) {
    const char* unified = nullptr;
    std::string unified_path;
    for (const auto& m : jailer::parse_cgroup_mounts(read("/proc/mounts")))
        if (m.version == 2) unified_path = m.path;
    if (!unified_path.empty()) unified = unified_path.c_str();
    ASSERT_NE(unified, nullptr) << "this host mounts no cgroup v2 hierarchy";
    start({"--cgroup-version", "2", "--parent-cgroup", parent_cgroup, "--cgroup",
           "cgroup.max.depth=3"});
    EXPECT_EQ(read(fs::path(unified) / parent_cgroup / "fn-1" / "cgroup.max.depth"), "3");
    EXPECT_NE(
        read("/proc/" + std::to_string(ember) + "/cgroup").find("0::/" + parent_cgroup + "/fn-1"),
        std::string::npos)
        << read("/proc/" + std::to_string(ember) + "/cgroup");
}

TEST_F(JailedEmber, DaemonizedInANewPidNamespaceItIsPidOneThere) {
    start({"--daemonize", "--new-pid-ns"});
    // The jailer itself is gone once the pid file is written.
    int status = 0;
    ASSERT_EQ(::waitpid(ember, &status, 0), ember);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ember = std::stoi(read(root() + "/ember.pid"));
    EXPECT_EQ(proc_line(ember, "status", "NSpid:"), "NSpid:\t" + std::to_string(ember) + "\t1");
    EXPECT_NE(inode("/proc/" + std::to_string(ember) + "/ns/pid"), inode("/proc/self/ns/pid"));
    for (int fd = 0; fd < 3; ++fd)
        EXPECT_EQ(fs::read_symlink("/proc/" + std::to_string(ember) + "/fd/" + std::to_string(fd)),
                  "/dev/null");
    EXPECT_NE(::getsid(ember), ::getsid(0)) << "a session of its own";
    EXPECT_NE(::getsid(ember), ember) << "not a session leader: it can get no terminal";
}

TEST_F(JailedEmber, EveryBadFlagIsRefusedAndLeavesNothingBehind) {
    fs::create_directories(base());
    fs::create_directories(dir.path() + "/lone");
    const std::string renamed = dir.path() + "/lone/vmm";
    fs::copy_file(EMBER_BINARY, renamed);
    struct Case {
        std::vector<std::string> args;
        std::string says;
    };
    auto with = [&](std::vector<std::string> replace) {
        auto args = jailer_args();
        for (size_t i = 0; i + 1 < replace.size(); i += 2) {
            auto it = std::find(args.begin(), args.end(), replace[i]);
            if (it == args.end())
                args.insert(args.end(), {replace[i], replace[i + 1]});
            else
                *(it + 1) = replace[i + 1];
        }
        return args;
    };
    const std::vector<Case> cases = {
        {with({"--id", "fn 1"}), "--id"},
        {with({"--id", std::string(65, 'a')}), "--id"},
        {with({"--exec-file", dir.path() + "/nothing/ember"}), "nothing/ember"},
        {with({"--exec-file", renamed}), "ember"},
        {with({"--exec-file", "relative/ember"}), "absolute"},
        {with({"--uid", "0"}), "--allow-root"},
        {with({"--gid", "x"}), "--gid"},
        {with({"--chroot-base-dir", "jails"}), "absolute"},
        {with({"--netns", "/nonexistent/ns"}), "/nonexistent/ns"},
        {with({"--cgroup-version", "3"}), "--cgroup-version"},
        {with({"--cgroup", "nosuch.max=1", "--parent-cgroup", parent_cgroup}),
         "'nosuch' controller"},
        {with({"--cgroup", "pids.max=many", "--parent-cgroup", parent_cgroup}), "pids.max"},
        {with({"--resource-limit", "cpu=1"}), "--resource-limit"},
        {with({"--bogus", "1"}), "--bogus"},
    };
    for (const auto& c : cases) {
        std::string line;
        for (const auto& a : c.args) line += a + " ";
        auto r = run_process(c.args, kFailsafe);
        EXPECT_EQ(r.exit_code, 1) << line;
        EXPECT_NE(r.err.find("ember-jailer: "), std::string::npos) << line << "\n" << r.err;
        EXPECT_NE(r.err.find(c.says), std::string::npos) << line << "\n" << r.err;
        EXPECT_TRUE(fs::is_empty(base())) << line << ": a jail was left behind";
        for (const auto& m : jailer::parse_cgroup_mounts(read("/proc/mounts")))
            EXPECT_FALSE(fs::exists(fs::path(m.path) / parent_cgroup)) << line << " in " << m.path;
    }
}

}  // namespace
// A run that fails once the jail is made: a --netns that is no network namespace fails after the
// jail is built, and leaves nothing; an ember that cannot start inside its jail (three open files
// are too few for its dynamic loader) leaves its jail to the host agent, as Firecracker's jailer
// does, and the next run with that id is told so, not "is microVM running?".
TEST_F(JailedEmber, AFailedRunLeavesNothingOrSaysWhatItLeft) {
    fs::create_directories(base());
    auto not_a_netns = run_process(jailer_args({"--netns", "/dev/null"}), kFailsafe);
    EXPECT_EQ(not_a_netns.exit_code, 1) << not_a_netns.err;
    EXPECT_NE(not_a_netns.err.find("/dev/null"), std::string::npos) << not_a_netns.err;
    EXPECT_TRUE(fs::is_empty(base())) << "a jail was left behind";

    auto args = jailer_args({"--resource-limit", "no-file=3"});
    args.insert(args.end(), {"--", "--api-sock", "/run/api.sock"});
    auto starved = run_process(args, kFailsafe);
    EXPECT_NE(starved.exit_code, 0) << starved.err;
    ASSERT_TRUE(fs::exists(root() + "/ember")) << starved.err;
    auto again = run_process(args, kFailsafe);
    EXPECT_EQ(again.exit_code, 1);
    EXPECT_NE(again.err.find("holds ember from a run that failed or has ended"), std::string::npos)
        << again.err;
    EXPECT_NE(again.err.find("remove " + root() + " to use the id 'fn-1' again"), std::string::npos)
        << again.err;
    EXPECT_EQ(again.err.find("is microVM"), std::string::npos) << again.err;
    fs::remove_all(base() + "/ember");
    start({});
}

}  // namespace ember::testing
