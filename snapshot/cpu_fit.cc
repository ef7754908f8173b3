#include "snapshot/cpu_fit.h"

#include <algorithm>
#include <set>
#include <string>

namespace ember::snapshot {
namespace {

// In first-seen order; a set beside, since a hostile file may repeat vCPUs by the thousand.
void add_new(std::vector<std::string>& to, std::set<std::string>& seen,
             const std::vector<std::string>& from) {
    for (const auto& x : from)
        if (seen.insert(x).second) to.push_back(x);
}

}  // namespace

std::string pending_exception_misfit(std::span<const VcpuState> vcpus, bool exception_payload) {
    if (exception_payload) return {};
    for (size_t i = 0; i < vcpus.size(); ++i)
        if (vcpus[i].events.flags & KVM_VCPUEVENT_VALID_PAYLOAD)
            return "vCPU " + std::to_string(i) + " was paused with exception " +
                   std::to_string(vcpus[i].events.exception.nr) +
                   " pending, which this host's KVM cannot take back: it lacks "
                   "KVM_CAP_EXCEPTION_PAYLOAD (Linux 4.20)";
    return {};
}

x86::CpuShortfall cpu_shortfall(std::span<const VcpuState> vcpus,
                                std::span<const kvm_cpuid_entry2> host,
                                std::span<const uint32_t> host_msrs) {
    x86::CpuShortfall all;
    std::set<std::string> features, xsave;
    for (const VcpuState& v : vcpus) {
        const auto s = x86::cpu_shortfall(v.cpuid, saved_xcr0(v), v.msrs, host, host_msrs);
        add_new(all.features, features, s.features);
        add_new(all.xsave, xsave, s.xsave);
        all.msrs.insert(all.msrs.end(), s.msrs.begin(), s.msrs.end());
    }
    std::sort(all.msrs.begin(), all.msrs.end());
    all.msrs.erase(std::unique(all.msrs.begin(), all.msrs.end()), all.msrs.end());
    return all;
}

}  // namespace ember::snapshot
