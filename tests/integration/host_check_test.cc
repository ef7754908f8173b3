// `ember --check-host` on the host the suite runs on, which has KVM (the suite runs only where
// there is): every item reported once, KVM and the probe guest fine, exit 0. Under the nested
// runner the guest's ring 0 and user space must both work: that is what the runner is for.
#include <gtest/gtest.h>

#include <cstdlib>

#include "tests/support/ember_process.h"

namespace ember::testing {
namespace {

using namespace std::chrono_literals;

TEST(CheckHost, ReportsEveryItemAndSaysThisHostRunsMicroVms) {
    auto r = run_process({EMBER_BINARY, "--check-host"}, kFailsafe);
    ASSERT_FALSE(r.timed_out) << r.out;
    EXPECT_EQ(r.exit_code, 0) << r.out;
    for (const char* item :
         {"/dev/kvm: ", "KVM capabilities: ", "dirty logging: ", "guest ring 0: ",
          "guest user space: ", "io_uring: ", "/dev/net/tun: ", "userfaultfd: ", "cgroups: "})
        EXPECT_EQ(count_lines_containing(r.out, item), 1) << item << "\n" << r.out;
    EXPECT_EQ(count_lines_containing(r.out, "/dev/kvm: ok (API version 12)"), 1) << r.out;
    EXPECT_EQ(count_lines_containing(r.out, "KVM capabilities: ok"), 1) << r.out;
    EXPECT_EQ(count_lines_containing(r.out, "dirty logging: ok"), 1) << r.out;
    EXPECT_EQ(count_lines_containing(r.out, "ember can run microVMs on this host"), 1) << r.out;
    if (std::getenv("EMBER_NESTED")) {
        EXPECT_EQ(count_lines_containing(r.out, "guest ring 0: ok"), 1) << r.out;
        EXPECT_EQ(count_lines_containing(r.out, "guest user space: ok"), 1) << r.out;
    }
}

TEST(CheckHost, ADevKvmThatIsNotKvmIsReportedAndExitsOne) {
    // /dev/null bound over /dev/kvm, in a private mount namespace.
    const std::string script =
        std::string("mount --bind /dev/null /dev/kvm && exec ") + EMBER_BINARY + " --check-host";
    auto r = run_process({"/usr/bin/unshare", "--mount", "/bin/sh", "-c", script}, kFailsafe);
    ASSERT_FALSE(r.timed_out) << r.out;
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_EQ(count_lines_containing(r.out, "/dev/kvm: broken"), 1) << r.out;
    EXPECT_EQ(count_lines_containing(r.out, "guest user space: not checked"), 1) << r.out;
    EXPECT_EQ(count_lines_containing(r.out, "ember cannot run microVMs on this host"), 1) << r.out;
}

}  // namespace
}  // namespace ember::testing
