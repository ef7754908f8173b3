#include "core/kvm/vcpu_state.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "core/base/log.h"

namespace ember {
namespace {

constexpr uint32_t kMsrTsc = 0x10;
constexpr uint32_t kMsrTscDeadline = 0x6e0;
constexpr uint32_t kMsrFeatureControl = 0x3a;
constexpr uint32_t kMsrVmxBasic = 0x480, kMsrVmxLast = 0x491;  // VMX capabilities
constexpr uint64_t kEferSvme = 1ull << 12;
constexpr uint64_t kCr4Vmxe = 1ull << 13;
constexpr uint64_t kTscTolerancePpm = 250;
constexpr uint64_t kXcr0AtReset = 1;  // x87 state alone
constexpr uint64_t kDr6AtReset = 0xffff0ff0, kDr7AtReset = 0x400;

bool tsc_differs(uint32_t here_khz, uint32_t saved_khz) {
    const uint64_t apart = here_khz > saved_khz ? here_khz - saved_khz : saved_khz - here_khz;
    return apart * 1'000'000 > kTscTolerancePpm * saved_khz;
}

kvm_nested_state header_of(std::span<const uint8_t> state) {
    kvm_nested_state h{};
    std::memcpy(&h, state.data(), std::min(state.size(), sizeof h));
    return h;
}

}  // namespace

bool nested_state_in_use(std::span<const uint8_t> state) {
    const kvm_nested_state h = header_of(state);
    if (h.flags & KVM_STATE_NESTED_GUEST_MODE) return true;
    switch (h.format) {
        case KVM_STATE_NESTED_FORMAT_SVM: return !(h.flags & KVM_STATE_NESTED_GIF_SET);
        case KVM_STATE_NESTED_FORMAT_VMX:
            return h.hdr.vmx.vmxon_pa != ~uint64_t{0} || h.hdr.vmx.smm.flags != 0;
        default: return true;  // a format this ember does not know: KVM does
    }
}

kvm_vcpu_events events_to_save(kvm_vcpu_events e) {
    if ((e.flags & KVM_VCPUEVENT_VALID_PAYLOAD) && !e.exception.pending) {
        e.flags &= ~uint32_t{KVM_VCPUEVENT_VALID_PAYLOAD};
        e.exception_has_payload = 0;
        e.exception_payload = 0;
    }
    return e;
}

uint64_t saved_xcr0(const VcpuState& v) {
    const auto n = std::min<uint32_t>(v.xcrs.nr_xcrs, KVM_MAX_XCRS);
    for (uint32_t i = 0; i < n; ++i)
        if (v.xcrs.xcrs[i].xcr == 0) return v.xcrs.xcrs[i].value;
    return kXcr0AtReset;
}

bool xcrs_as_at_reset(const kvm_xcrs& xcrs) {
    const uint32_t n = std::min<uint32_t>(xcrs.nr_xcrs, KVM_MAX_XCRS);
    for (uint32_t i = 0; i < n; ++i)
        if (xcrs.xcrs[i].xcr != 0 || xcrs.xcrs[i].value != kXcr0AtReset) return false;
    return true;
}

Result<void> check_nested_state(std::span<const uint8_t> state) {
    if (state.size() < sizeof(kvm_nested_state) || state.size() > kMaxNestedStateBytes)
        return fail("nested virtualization state of " + std::to_string(state.size()) +
                    " bytes; it takes " + std::to_string(sizeof(kvm_nested_state)) + " to " +
                    std::to_string(kMaxNestedStateBytes));
    const kvm_nested_state h = header_of(state);
    if (h.size != state.size())
        return fail("nested virtualization state: its header says " + std::to_string(h.size) +
                    " bytes, and " + std::to_string(state.size()) + " came");
    if (h.format != KVM_STATE_NESTED_FORMAT_SVM && h.format != KVM_STATE_NESTED_FORMAT_VMX)
        return fail("nested virtualization state of format " + std::to_string(h.format) +
                    ", neither VMX (0) nor SVM (1)");
    return {};
}

Result<VcpuState> capture_vcpu(const Vcpu& v, std::span<const uint32_t> msr_indices,
                               std::vector<kvm_cpuid_entry2> cpuid, size_t nested_state_size) {
    VcpuState s;
    s.cpuid = std::move(cpuid);
    auto tsc = v.get_tsc_khz();
    EMBER_TRY(tsc);
    s.tsc_khz = *tsc;
    // The MP state first: reading it makes KVM take the INIT or SIPI a vCPU still has pending,
    // which rewrites its registers and LAPIC. Read after them, it would describe a vCPU (runnable
    // at a SIPI's vector) that the registers saved beside it do not (still at the reset vector).
    auto mp = v.get_mp_state();
    auto regs = v.get_regs();
    auto sregs = v.get_sregs();
    auto xsave = v.get_xsave();
    auto xcrs = v.get_xcrs();
    auto lapic = v.get_lapic();
    auto events = v.get_vcpu_events();
    auto dregs = v.get_debugregs();
    for (const Error* e : {regs ? nullptr : &regs.error(), sregs ? nullptr : &sregs.error(),
                           xsave ? nullptr : &xsave.error(), xcrs ? nullptr : &xcrs.error(),
                           lapic ? nullptr : &lapic.error(), mp ? nullptr : &mp.error(),
                           events ? nullptr : &events.error(), dregs ? nullptr : &dregs.error()})
        if (e) return std::unexpected(*e);
    s.regs = *regs;
    s.sregs = *sregs;
    s.xsave = *xsave;
    s.xcrs = *xcrs;
    s.lapic = *lapic;
    s.mp_state = *mp;
    s.events = events_to_save(*events);
    s.debugregs = *dregs;
    // KVM reads MSRs in order and stops at the first it cannot read: drop that one and go on.
    std::vector<uint32_t> wanted(msr_indices.begin(), msr_indices.end());
    while (!wanted.empty()) {
        auto got = v.get_msrs(wanted);
        EMBER_TRY(got);
        s.msrs.insert(s.msrs.end(), got->begin(), got->end());
        if (got->size() == wanted.size()) break;
        wanted.erase(wanted.begin(), wanted.begin() + static_cast<ptrdiff_t>(got->size() + 1));
    }
    if (nested_state_size > 0) {
        // Nested virtualization is in use only once the guest has turned it on (EFER.SVME,
        // CR4.VMXE). Before that, a KVM that lists the capability and cannot read the state
        // would otherwise fail every snapshot on its host: the snapshot goes on and says so.
        const bool turned_on = (s.sregs.efer & kEferSvme) || (s.sregs.cr4 & kCr4Vmxe);
        auto nested = v.get_nested_state(nested_state_size);
        if (!nested && turned_on) return std::unexpected(nested.error());
        if (!nested) {
            log::warn("snapshot: vCPU " + std::to_string(v.id()) + ": " + nested.error().message +
                      ": saved without nested virtualization state");
        } else if (nested_state_in_use(*nested)) {
            // What a load would refuse is refused now, before the old snapshot is replaced.
            EMBER_TRY(check_nested_state(*nested));
            s.nested = std::move(*nested);
        }
    }
    return s;
}

bool debugregs_as_at_reset(const kvm_debugregs& d) {
    return d.db[0] == 0 && d.db[1] == 0 && d.db[2] == 0 && d.db[3] == 0 && d.dr6 == kDr6AtReset &&
           d.dr7 == kDr7AtReset && d.flags == 0;
}

Result<void> restore_vcpu(const Vcpu& v, const VcpuState& s, const VcpuAsMade& as_made) {
    if (!as_made.cpuid_in_place) EMBER_TRY(v.set_cpuid(s.cpuid));
    if (s.tsc_khz) {
        // Within 250 ppm (Firecracker's bound) the guest's clock keeps the host's rate: less drift
        // than NTP corrects, and no scaling on every guest TSC read. A host that cannot scale
        // leaves the guest seeing time at its own rate, which is said.
        auto current = as_made.tsc_khz ? Result<uint32_t>(*as_made.tsc_khz) : v.get_tsc_khz();
        if (current && tsc_differs(*current, s.tsc_khz)) {
            if (auto set = v.set_tsc_khz(s.tsc_khz); !set)
                log::warn("restore: the snapshot's TSC ran at " + std::to_string(s.tsc_khz) +
                          " kHz and this host's runs at " + std::to_string(*current) +
                          " kHz, which its KVM cannot scale (" + set.error().message +
                          "): the guest's clock runs at this host's rate until it recalibrates");
        }
    }
    EMBER_TRY(v.set_sregs(s.sregs));
    if (!s.nested.empty()) {
        // KVM takes a nested state only on top of what allows it: EFER.SVME (in the special
        // registers just set) for SVM; for VMX, CR4.VMXE, the feature-control MSR that lets
        // VMXON run, and the VMX capabilities a template set (KVM refuses them after VMXON),
        // which its state is checked against.
        for (const auto& m : s.msrs)
            if (m.index == kMsrFeatureControl ||
                (m.index >= kMsrVmxBasic && m.index <= kMsrVmxLast))
                EMBER_TRY(v.set_msrs({&m, 1}));
        EMBER_TRY(v.set_nested_state(s.nested));
    }
    EMBER_TRY(v.set_regs(s.regs));
    EMBER_TRY(v.set_xsave(s.xsave));
    // A host whose CPU has no XSAVE refuses KVM_SET_XCRS outright. A guest that never enabled
    // XSAVE (every guest booted on such a host or under a template without it) has the XCR0 that
    // KVM gives each new vCPU, and loads there with nothing to set.
    if (!xcrs_as_at_reset(s.xcrs)) EMBER_TRY(v.set_xcrs(s.xcrs));
    // The LAPIC before the MSRs: KVM drops a TSC-deadline write unless the timer is in that mode.
    EMBER_TRY(v.set_lapic(s.lapic));
    std::vector<kvm_msr_entry> msrs = s.msrs;
    // TSC first and TSC_DEADLINE last: the deadline is relative to the restored TSC.
    std::stable_sort(msrs.begin(), msrs.end(), [](const auto& a, const auto& b) {
        auto rank = [](uint32_t i) { return i == kMsrTsc ? 0 : i == kMsrTscDeadline ? 2 : 1; };
        return rank(a.index) < rank(b.index);
    });
    EMBER_TRY(v.set_msrs(msrs));
    EMBER_TRY(v.set_mp_state(s.mp_state));
    EMBER_TRY(v.set_vcpu_events(s.events));
    if (as_made.fresh && debugregs_as_at_reset(s.debugregs)) return {};
    return v.set_debugregs(s.debugregs);
}

}  // namespace ember
