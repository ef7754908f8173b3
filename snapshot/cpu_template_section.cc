#include "snapshot/cpu_template_section.h"

#include <string>

#include "core/base/state_sections.h"

namespace ember::snapshot {
namespace {

constexpr uint32_t kVersion = state_sections::kCpuTemplate.version;

Result<void> check_bitmap(const BitmapModifier& b, unsigned bits) {
    const uint64_t width = bits == 64 ? ~uint64_t{0} : (uint64_t{1} << bits) - 1;
    if ((b.mask | b.value) & ~width)
        return fail("cpu template: a bitmap wider than its " + std::to_string(bits) + " bits");
    return {};
}

// What each field's type allows and a template cannot hold: a fifth register, a wider bitmap.
Result<void> check(const CpuTemplate& t) {
    for (const auto& leaf : t.cpuid_modifiers)
        for (const auto& m : leaf.modifiers) {
            if (m.reg > CpuidRegister::Edx)
                return fail("cpu template: register " +
                            std::to_string(static_cast<unsigned>(m.reg)) + " is not one");
            EMBER_TRY(check_bitmap(m.bitmap, 32));
        }
    for (const auto& m : t.msr_modifiers) EMBER_TRY(check_bitmap(m.bitmap, 64));
    return {};
}

}  // namespace

std::vector<uint8_t> encode(const CpuTemplate& t) {
    return encode_state(t, kVersion);
}

Result<CpuTemplate> decode_cpu_template(std::span<const uint8_t> payload) {
    auto t = decode_state<CpuTemplate>(payload, kVersion, "cpu template");
    EMBER_TRY(t);
    EMBER_TRY(check(*t));
    return t;
}

}  // namespace ember::snapshot
