// The FUSE file the stalled-drive tests use (tests/support/fuse_file.h): its mount is the test's
// own, so a test killed by its failsafe leaves nothing mounted on the host. Root, for the mount.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "tests/support/ember_process.h"
#include "tests/support/fuse_file.h"

namespace ember::testing {
namespace {

// Whether `dir` is a mount point as process `pid` ("self", or 1: the host's namespace) sees.
bool mounted(const std::string& pid, const std::string& dir) {
    return read_file("/proc/" + pid + "/mountinfo").find(" " + dir + " ") != std::string::npos;
}

TEST(FuseFile, AKilledTestLeavesNothingMountedOnTheHost) {
    TempDir tmp;
    const std::string dir = tmp.path() + "/mnt";
    ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
    int ready[2];
    ASSERT_EQ(::pipe(ready), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        // A test process: mounts, says whether it sees its mount, then waits to be killed.
        std::string why;
        auto image = FuseFile::mount(dir, "contents", why);
        const char seen = image && mounted("self", dir) ? 'y' : 'n';
        (void)!::write(ready[1], &seen, 1);
        ::pause();
        ::_exit(0);
    }
    ::close(ready[1]);
    char seen = 0;
    ASSERT_EQ(::read(ready[0], &seen, 1), 1);
    ::close(ready[0]);
    EXPECT_EQ(seen, 'y') << "the test process does not see its own mount";
    EXPECT_FALSE(mounted("1", dir)) << "the mount is in the host's namespace";
    ::kill(child, SIGKILL);
    ASSERT_TRUE(wait_for_end(child, std::chrono::seconds(10)));
    EXPECT_FALSE(mounted("1", dir));
    // Run after another FUSE test in one process (not as ctest runs them), this process is in
    // the namespace the child mounted in, which lives on with it.
    (void)::umount2(dir.c_str(), MNT_DETACH);
}

}  // namespace
}  // namespace ember::testing
