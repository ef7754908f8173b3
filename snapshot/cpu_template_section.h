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

#include "core/base/error.h"
#include "core/base/state_codec.h"
#include "core/config/cpu_template.h"

namespace ember {

// The section's layout, which the files ember has written fix; a bitmap is its mask and value, a
// register its number (the API's names are api/json's, by core/config/config_fields.h).
template <typename S, typename V>
    requires std::same_as<std::remove_const_t<S>, BitmapModifier>
void describe_state(S& b, V&& v) {
    v(StateField{"mask"}, b.mask);
    v(StateField{"value"}, b.value);
}

template <typename S, typename V>
    requires std::same_as<std::remove_const_t<S>, CpuidRegisterModifier>
void describe_state(S& m, V&& v) {
    v(StateField{"register"}, m.reg);
    v(StateField{"bitmap"}, m.bitmap);
}

template <typename S, typename V>
    requires std::same_as<std::remove_const_t<S>, CpuidLeafModifier>
void describe_state(S& m, V&& v) {
    v(StateField{"leaf"}, m.leaf);
    v(StateField{"subleaf"}, m.subleaf);
    v(StateField{"flags"}, m.flags);
    v(StateField{.name = "register modifiers", .max = kMaxRegisterModifiers}, m.modifiers);
}

template <typename S, typename V>
    requires std::same_as<std::remove_const_t<S>, MsrModifier>
void describe_state(S& m, V&& v) {
    v(StateField{"addr"}, m.addr);
    v(StateField{"bitmap"}, m.bitmap);
}

template <typename S, typename V>
    requires std::same_as<std::remove_const_t<S>, KvmCapabilityModifier>
void describe_state(S& c, V&& v) {
    v(StateField{"capability"}, c.capability);
    v(StateField{"removed"}, c.removed);
}

template <typename S, typename V>
    requires std::same_as<std::remove_const_t<S>, CpuTemplate>
void describe_state(S& t, V&& v) {
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
