// The host report's pure parts: how a line reads, and when ring 0 counts as emulated.
#include "core/host_check/host_check.h"

#include <gtest/gtest.h>

#include "core/host_check/probe_vm.h"

namespace ember {
namespace {

TEST(HostCheck, AnOkLineSaysOkAndWhatWasFound) {
    EXPECT_EQ(format_check_line({"io_uring", CheckStatus::Ok, "a ring can be set up", ""}),
              "io_uring: ok (a ring can be set up)");
}

TEST(HostCheck, AProblemLineSaysWhatIsWrongAndHowToFixIt) {
    EXPECT_EQ(format_check_line({"/dev/kvm", CheckStatus::Missing, "does not exist", "load kvm"}),
              "/dev/kvm: missing: does not exist. Fix: load kvm");
    EXPECT_EQ(format_check_line({"guest ring 0", CheckStatus::Slow, "emulated", "x"}),
              "guest ring 0: slow: emulated. Fix: x");
    EXPECT_EQ(format_check_line({"guest user space", CheckStatus::NotChecked, "needs KVM", ""}),
              "guest user space: not checked: needs KVM");
}

TEST(HostCheck, RingZeroIsEmulatedOnlyWhenFarSlowerThanRingThree) {
    ProbeResult pvm{1.4e6, 2.9e9, true, ""};  // measured on a host that emulates ring 0
    EXPECT_TRUE(ring0_is_emulated(pvm));
    ProbeResult hardware{2.8e9, 2.9e9, true, ""};
    EXPECT_FALSE(ring0_is_emulated(hardware));
    ProbeResult tcg{5.0e8, 6.0e8, true, ""};  // everything emulated alike: not ring 0's problem
    EXPECT_FALSE(ring0_is_emulated(tcg));
    ProbeResult never_reached_ring3{1.4e6, std::nullopt, true, "triple fault"};
    EXPECT_FALSE(ring0_is_emulated(never_reached_ring3));
}

}  // namespace
}  // namespace ember
