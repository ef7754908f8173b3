// stage2_faults PID OUT: counts the stage-2 page faults KVM takes for the vCPUs of ember PID (the
// kvm:kvm_page_fault tracepoint on each of its threads named "fc_vcpu N"), from when OUT says
// "counting" until a SIGTERM, and then writes the count to OUT; "-" where the host has no such
// tracepoint or no vCPU thread was found. These are the guest's touches of pages KVM has not yet
// mapped for it, which a host page fault count does not show once the host page is present.
#include <signal.h>
#include <sys/types.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/tracepoint_counter.h"
#include "tests/support/vcpu_threads.h"

using ember::testing::TracepointCounter;
using ember::testing::vcpu_threads;

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: stage2_faults PID OUT\n");
        return 2;
    }
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, nullptr);

    std::vector<std::unique_ptr<TracepointCounter>> counters;
    for (pid_t tid : vcpu_threads(static_cast<pid_t>(std::stoi(argv[1])))) {
        auto counter = std::make_unique<TracepointCounter>("kvm/kvm_page_fault", tid);
        if (counter->valid()) counters.push_back(std::move(counter));
    }
    const std::string out = argv[2];
    std::ofstream(out) << "counting\n";
    int signal = 0;
    sigwait(&term, &signal);
    if (counters.empty()) {
        std::ofstream(out) << "-\n";
        return 0;
    }
    uint64_t total = 0;
    for (const auto& c : counters) total += c->now().value_or(0);
    std::ofstream(out) << total << "\n";
    return 0;
}
