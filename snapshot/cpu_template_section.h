// snapshot: the state file's cpu template section, the custom CPU template (PUT /cpu-config, the
// config file's cpu-config) the guest was booted under. Its effect is in each vCPU's section (the
// CPUID and MSRs the guest was given); this says where that came from, so a VM restored from it,
// and every snapshot taken of that VM, still knows, and so ember-snapshot-info can tell. Written
// optional: an ember that does not know the section loads the file without it.
#pragma once

#include <concepts>
#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

#include "core/base/described.h"
#include "core/base/error.h"
#include "core/base/state_codec.h"
#include "core/config/cpu_template.h"

namespace ember {

// The section's layout, which the files ember has written fix; a bitmap is its mask and value, a
// register its number (the API's names are api/json's, by core/config/config_fields.h).
void describe_state(Is<BitmapModifier> auto& b, auto&& v) {
    leaves(v, b.mask, b.value);
}

void describe_state(Is<CpuidRegisterModifier> auto& m, auto&& v) {
    leaves(v, m.reg);
    v(StateField{"bitmap"}, m.bitmap);
}

void describe_state(Is<CpuidLeafModifier> auto& m, auto&& v) {
    leaves(v, m.leaf, m.subleaf, m.flags);
    v(StateField{.name = "register modifiers", .max = kMaxRegisterModifiers}, m.modifiers);
}

void describe_state(Is<MsrModifier> auto& m, auto&& v) {
    leaves(v, m.addr);
    v(StateField{"bitmap"}, m.bitmap);
}

void describe_state(Is<KvmCapabilityModifier> auto& c, auto&& v) {
    leaves(v, c.capability, c.removed);
}

void describe_state(Is<CpuTemplate> auto& t, auto&& v) {
    v(StateField{.name = "KVM capabilities", .max = kMaxKvmCapabilities}, t.kvm_capabilities);
    v(StateField{.name = "CPUID modifiers", .max = kMaxCpuidModifiers}, t.cpuid_modifiers);
    v(StateField{.name = "MSR modifiers", .max = kMaxMsrModifiers}, t.msr_modifiers);
}

}  // namespace ember

namespace ember::snapshot {

std::vector<uint8_t> encode(const CpuTemplate& t);
// Bounded as a template from the API is (cpu_template.h's kMax...), and checked whole.
Result<CpuTemplate> decode_cpu_template(std::span<const uint8_t> payload);

}  // namespace ember::snapshot
