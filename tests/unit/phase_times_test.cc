// core/base/phase_times: the log line perf/startup and perf/density read, each step's end in
// microseconds from its origin, which the line names with its place on CLOCK_MONOTONIC.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "core/base/phase_times.h"

namespace ember {
namespace {

TEST(PhaseTimes, EachStepEndsInMicrosecondsFromTheOriginTheLineNames) {
    const auto origin = PhaseTimes::Clock::now() - std::chrono::milliseconds(5);
    PhaseTimes phases(origin, "main");
    phases.mark("seccomp filters");
    phases.mark("KVM VM");
    const std::string line = phases.describe();
    long long at = 0, filters = 0, vm = 0;
    ASSERT_EQ(std::sscanf(line.c_str(),
                          "phases, us from main (at %lld on CLOCK_MONOTONIC): seccomp filters "
                          "%lld, KVM VM %lld",
                          &at, &filters, &vm),
              3)
        << line;
    EXPECT_EQ(
        at,
        std::chrono::duration_cast<std::chrono::microseconds>(origin.time_since_epoch()).count());
    EXPECT_GE(filters, 5000);
    EXPECT_GE(vm, filters) << line;
}

TEST(PhaseTimes, ARestartTimesTheNextStepsFromItsOwnOrigin) {
    PhaseTimes phases(PhaseTimes::Clock::now() - std::chrono::seconds(10), "main");
    phases.mark("controller");
    phases.restart("PUT /snapshot/load");
    phases.mark("state file");
    const std::string line = phases.describe();
    EXPECT_EQ(line.find("controller"), std::string::npos) << line;
    long long at = 0, state = 0;
    ASSERT_EQ(std::sscanf(line.c_str(),
                          "phases, us from PUT /snapshot/load (at %lld on CLOCK_MONOTONIC): state "
                          "file %lld",
                          &at, &state),
              2)
        << line;
    EXPECT_LT(state, 1000000) << "from the restart, not from main ten seconds before";
}

}  // namespace
}  // namespace ember
