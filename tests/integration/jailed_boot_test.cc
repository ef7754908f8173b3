// A test guest booted by an ember that ember-jailer started: configured through the API socket
// inside the jail, on the /dev/kvm node the jailer made, as the jail's unprivileged ids.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/support/ember_api.h"
#include "tests/support/ember_process.h"

namespace ember::testing {
namespace {

namespace fs = std::filesystem;

TEST(JailedBoot, AGuestBootsInTheJailThroughTheApiInside) {
    TempDir dir;
    const std::string base = dir.path() + "/jails";
    const std::string root = base + "/ember/fn-1/root";
    // What a host agent does: the kernel goes into the jail, readable by the jail's ids.
    fs::create_directories(root);
    fs::copy_file(std::string(EMBER_GUEST_DIR) + "/hello.elf", root + "/hello.elf");
    fs::permissions(root + "/hello.elf", fs::perms(0644));

    const std::string out_path = dir.path() + "/out", err_path = dir.path() + "/err";
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    pid_t pid =
        spawn({EMBER_JAILER, "--id", "fn-1", "--exec-file", EMBER_BINARY, "--uid", "54321", "--gid",
               "54321", "--chroot-base-dir", base, "--", "--api-sock", "/run/api.sock"},
              in, out, err);
    ::close(in);
    ::close(out);
    ::close(err);
    // A failed step must not leave ember running.
    struct Reaper {
        pid_t pid;
        bool reaped = false;
        ~Reaper() {
            if (reaped) return;
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
    } reaper{pid};

    auto client = EmberApi::connect(root + "/run/api.sock");
    ASSERT_TRUE(client) << client.error().message << "\n" << read_file(err_path);
    auto call = [&](const std::string& method, const std::string& path, const std::string& body) {
        auto r = client->request(method, path, body);
        return r ? r->status : -1;
    };
    EXPECT_EQ(call("PUT", "/machine-config", R"({"vcpu_count": 1, "mem_size_mib": 16})"), 204);
    EXPECT_EQ(call("PUT", "/boot-source", R"({"kernel_image_path": "/hello.elf"})"), 204);
    EXPECT_EQ(call("PUT", "/actions", R"({"action_type": "InstanceStart"})"), 204)
        << read_file(err_path);

    // The guest prints and resets the VM, which ends ember.
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    reaper.reaped = true;
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << read_file(err_path);
    EXPECT_EQ(read_file(out_path), "hello from the test guest\n") << read_file(err_path);
    EXPECT_EQ(count_lines_containing(read_file(err_path), "exited: guest reset the VM"), 1)
        << read_file(err_path);
}

}  // namespace
}  // namespace ember::testing
