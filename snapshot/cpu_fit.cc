#include "snapshot/cpu_fit.h"

#include <algorithm>

namespace ember::snapshot {
namespace {

template <typename T>
void add_new(std::vector<T>& to, const std::vector<T>& from) {
    for (const auto& x : from)
        if (std::find(to.begin(), to.end(), x) == to.end()) to.push_back(x);
}

}  // namespace

uint64_t saved_xcr0(const VcpuState& v) {
    const auto n = std::min<uint32_t>(v.xcrs.nr_xcrs, KVM_MAX_XCRS);
    for (uint32_t i = 0; i < n; ++i)
        if (v.xcrs.xcrs[i].xcr == 0) return v.xcrs.xcrs[i].value;
    return 1;
}

x86::CpuShortfall cpu_shortfall(std::span<const VcpuState> vcpus,
                                std::span<const kvm_cpuid_entry2> host,
                                std::span<const uint32_t> host_msrs) {
    x86::CpuShortfall all;
    for (const VcpuState& v : vcpus) {
        std::vector<uint32_t> msrs;
        msrs.reserve(v.msrs.size());
        for (const auto& m : v.msrs) msrs.push_back(m.index);
        const auto s = x86::cpu_shortfall(v.cpuid, saved_xcr0(v), msrs, host, host_msrs);
        add_new(all.features, s.features);
        add_new(all.xsave, s.xsave);
        all.msrs.insert(all.msrs.end(), s.msrs.begin(), s.msrs.end());
    }
    std::sort(all.msrs.begin(), all.msrs.end());
    all.msrs.erase(std::unique(all.msrs.begin(), all.msrs.end()), all.msrs.end());
    return all;
}

}  // namespace ember::snapshot
