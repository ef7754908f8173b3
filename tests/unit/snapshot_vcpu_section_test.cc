// The vCPU section's versions: 2 adds the nested virtualization state, whose frame is checked
// before KVM sees it; a vCPU without one is still written, and read, as version 1. And which saved
// XCRs a load sets back, and when the events keep KVM_CAP_EXCEPTION_PAYLOAD's format.
#include <gtest/gtest.h>

#include <cstring>

#include "core/kvm/vcpu_state.h"
#include "snapshot/cpu_fit.h"
#include "snapshot/machine_state.h"

namespace ember::snapshot {
namespace {

VcpuState a_vcpu() {
    VcpuState s;
    s.regs.rip = 0x100000;
    s.msrs = {{.index = 0x10, .reserved = 0, .data = 42}};
    return s;
}

// A nested state of `data` bytes after its header, as KVM_GET_NESTED_STATE writes one.
std::vector<uint8_t> nested_state(uint16_t format, uint16_t flags, size_t data) {
    kvm_nested_state h{};
    h.format = format;
    h.flags = flags;
    h.size = static_cast<uint32_t>(sizeof h + data);
    std::vector<uint8_t> bytes(sizeof h + data, 0x5a);
    std::memcpy(bytes.data(), &h, sizeof h);
    return bytes;
}

TEST(VcpuSection, TheNestedStateRoundTripsAndAVcpuWithoutOneIsWrittenAsVersionOne) {
    VcpuState s = a_vcpu();
    EXPECT_EQ(vcpu_section_version(s), 1u) << "an ember from before version 2 loads it";
    auto back = decode_vcpu(encode(s), 1);
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_TRUE(back->nested.empty());
    EXPECT_EQ(back->regs.rip, 0x100000u);
    EXPECT_EQ(back->msrs.size(), 1u);

    s.nested = nested_state(KVM_STATE_NESTED_FORMAT_SVM, KVM_STATE_NESTED_GUEST_MODE, 4096);
    EXPECT_EQ(vcpu_section_version(s), 2u);
    back = decode_vcpu(encode(s), 2);
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(back->nested, s.nested);
}

// Version 3: an exception still pending at the pause, in KVM_CAP_EXCEPTION_PAYLOAD's format, with
// a nested state or without one. An ember that reads up to version 2 refuses it by the version.
TEST(VcpuSection, APendingExceptionIsVersionThreeWithOrWithoutANestedState) {
    VcpuState s = a_vcpu();
    s.events.flags = KVM_VCPUEVENT_VALID_PAYLOAD;
    s.events.exception.pending = 1;
    s.events.exception.nr = 14;
    s.events.exception_has_payload = 1;
    s.events.exception_payload = 0x1000;
    EXPECT_EQ(vcpu_section_version(s), 3u);
    auto back = decode_vcpu(encode(s), 3);
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_TRUE(back->nested.empty());
    EXPECT_EQ(back->events.exception_payload, 0x1000u);

    s.nested = nested_state(KVM_STATE_NESTED_FORMAT_SVM, KVM_STATE_NESTED_GUEST_MODE, 4096);
    EXPECT_EQ(vcpu_section_version(s), 3u);
    back = decode_vcpu(encode(s), 3);
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(back->nested, s.nested);
}

TEST(VcpuSection, EachVersionHoldsWhatItSaysAndNoMore) {
    const std::vector<uint8_t> v1 = encode(a_vcpu());
    VcpuState nested = a_vcpu();
    nested.nested = nested_state(KVM_STATE_NESTED_FORMAT_SVM, 0, 0);
    const std::vector<uint8_t> v2 = encode(nested);
    EXPECT_FALSE(decode_vcpu(v1, 2)) << "a version 2 section holds a nested state";
    EXPECT_FALSE(decode_vcpu(v2, 1)) << "version 1 has nothing after the debug registers";
    EXPECT_FALSE(decode_vcpu(v2, 3)) << "version 3 holds an exception pending";
    EXPECT_FALSE(decode_vcpu(v2, kVcpuVersion + 1));
    EXPECT_FALSE(decode_vcpu(v2, 0));

    VcpuState pending = nested;
    pending.events.flags = KVM_VCPUEVENT_VALID_PAYLOAD;
    pending.events.exception.pending = 1;
    auto refused = decode_vcpu(encode(pending), 2);
    ASSERT_FALSE(refused) << "KVM's format for a pending exception in a version 2 section";
    EXPECT_NE(refused.error().message.find("which version 3 alone holds"), std::string::npos)
        << refused.error().message;
}

TEST(VcpuSection, RefusesANestedStateWhoseFrameIsWrong) {
    VcpuState s = a_vcpu();
    auto refused = [&](std::vector<uint8_t> nested) {
        s.nested = std::move(nested);
        auto back = decode_vcpu(encode(s), 2);
        return back ? std::string() : back.error().message;
    };
    auto lying = nested_state(KVM_STATE_NESTED_FORMAT_VMX, 0, 100);
    lying.pop_back();
    EXPECT_NE(refused(lying).find("its header says 228 bytes, and 227 came"), std::string::npos)
        << refused(lying);
    EXPECT_NE(refused(nested_state(7, 0, 0)).find("format 7"), std::string::npos);
    EXPECT_NE(refused(std::vector<uint8_t>(64, 0)).find("of 64 bytes"), std::string::npos);
    EXPECT_NE(refused(nested_state(KVM_STATE_NESTED_FORMAT_VMX, 0, 3 * 4096)).find("entries"),
              std::string::npos)
        << "more than the largest state is refused before it is read";
}

TEST(VcpuSection, OnlyANestedStateInUseIsWorthSaving) {
    EXPECT_FALSE(nested_state_in_use(
        nested_state(KVM_STATE_NESTED_FORMAT_SVM, KVM_STATE_NESTED_GIF_SET, 0)));
    EXPECT_TRUE(nested_state_in_use(nested_state(KVM_STATE_NESTED_FORMAT_SVM, 0, 0)))
        << "GIF clear";
    EXPECT_TRUE(nested_state_in_use(
        nested_state(KVM_STATE_NESTED_FORMAT_SVM,
                     KVM_STATE_NESTED_GIF_SET | KVM_STATE_NESTED_GUEST_MODE, 4096)));

    auto vmx = nested_state(KVM_STATE_NESTED_FORMAT_VMX, 0, 0);
    kvm_nested_state h{};
    std::memcpy(&h, vmx.data(), sizeof h);
    h.hdr.vmx.vmxon_pa = ~uint64_t{0};
    h.hdr.vmx.vmcs12_pa = ~uint64_t{0};
    std::memcpy(vmx.data(), &h, sizeof h);
    EXPECT_FALSE(nested_state_in_use(vmx)) << "no VMXON";
    h.hdr.vmx.vmxon_pa = 0x10000;
    std::memcpy(vmx.data(), &h, sizeof h);
    EXPECT_TRUE(nested_state_in_use(vmx)) << "after VMXON";
}

// restore_vcpu leaves a new vCPU's debug registers alone where the state holds what KVM gave it;
// a guest that used any of them has them set back.
TEST(VcpuSection, DebugRegistersAsAtResetAreKnownAndAnyUseIsNot) {
    kvm_debugregs d{};
    d.dr6 = 0xffff0ff0;
    d.dr7 = 0x400;
    EXPECT_TRUE(debugregs_as_at_reset(d));
    for (int i = 0; i < 4; ++i) {
        kvm_debugregs used = d;
        used.db[i] = 0x1000;
        EXPECT_FALSE(debugregs_as_at_reset(used)) << "DR" << i;
    }
    kvm_debugregs armed = d;
    armed.dr7 = 0x401;  // L0: a breakpoint enabled
    EXPECT_FALSE(debugregs_as_at_reset(armed));
    kvm_debugregs hit = d;
    hit.dr6 = 0xffff0ff1;  // B0: a breakpoint hit
    EXPECT_FALSE(debugregs_as_at_reset(hit));
    kvm_debugregs flagged = d;
    flagged.flags = 1;
    EXPECT_FALSE(debugregs_as_at_reset(flagged));
}

// A host without XSAVE refuses KVM_SET_XCRS: what every new vCPU has is not set back, so that a
// guest that never enabled XSAVE loads there (tests/e2e/cpu_models.sh, on Opteron_G3).
TEST(VcpuState, OnlyXcrsPastX87AloneAreSetBack) {
    kvm_xcrs x{};
    EXPECT_TRUE(xcrs_as_at_reset(x)) << "none saved: a host without XSAVE reads none";
    x.nr_xcrs = 1;
    x.xcrs[0] = {.xcr = 0, .reserved = 0, .value = 1};
    EXPECT_TRUE(xcrs_as_at_reset(x));
    x.xcrs[0].value = 0x7;
    EXPECT_FALSE(xcrs_as_at_reset(x)) << "SSE and AVX state enabled";
    x.xcrs[0] = {.xcr = 1, .reserved = 0, .value = 1};
    EXPECT_FALSE(xcrs_as_at_reset(x)) << "an XCR other than XCR0 is for KVM to judge";
}

// Events in KVM_CAP_EXCEPTION_PAYLOAD's format load only where KVM has the capability: they are
// kept so only while an exception is pending, whose payload a load needs.
TEST(VcpuState, OnlyAPendingExceptionKeepsThePayloadFormat) {
    kvm_vcpu_events e{};
    e.flags = KVM_VCPUEVENT_VALID_PAYLOAD | KVM_VCPUEVENT_VALID_SHADOW;
    e.exception.injected = 1;
    e.exception.nr = 14;
    e.exception_has_payload = 1;
    e.exception_payload = 0x1000;
    auto saved = events_to_save(e);
    EXPECT_EQ(saved.flags, uint32_t{KVM_VCPUEVENT_VALID_SHADOW});
    EXPECT_EQ(saved.exception.injected, 1);
    EXPECT_EQ(saved.exception.nr, 14);
    EXPECT_EQ(saved.exception_has_payload, 0) << "KVM drops an injected exception's payload";

    e.exception.injected = 0;
    e.exception.pending = 1;
    saved = events_to_save(e);
    EXPECT_EQ(saved.flags, e.flags);
    EXPECT_EQ(saved.exception.pending, 1);
    EXPECT_EQ(saved.exception_has_payload, 1);
    EXPECT_EQ(saved.exception_payload, 0x1000u) << "a #PF's CR2, not yet written";

    // Where KVM lacks the capability, a load (and ember-snapshot-info --check-host) says why.
    std::vector<VcpuState> vcpus(2);
    EXPECT_EQ(pending_exception_misfit(vcpus, false), "");
    vcpus[1].events = saved;
    EXPECT_EQ(pending_exception_misfit(vcpus, true), "");
    EXPECT_NE(pending_exception_misfit(vcpus, false)
                  .find("vCPU 1 was paused with exception 14 pending, which this host's KVM cannot "
                        "take back: it lacks KVM_CAP_EXCEPTION_PAYLOAD"),
              std::string::npos)
        << pending_exception_misfit(vcpus, false);
}

}  // namespace
}  // namespace ember::snapshot
