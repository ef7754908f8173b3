#include "vmm/machine/fleet_template.h"

#include <algorithm>
#include <array>
#include <limits>
#include <string>

#include "core/base/hex.h"
#include "vmm/machine/templated_cpu.h"

namespace ember {
namespace {

constexpr uint32_t kAll = std::numeric_limits<uint32_t>::max();
constexpr std::array kRegisters{CpuidRegister::Eax, CpuidRegister::Ebx, CpuidRegister::Ecx,
                                CpuidRegister::Edx};

// The registers whose bits are XSAVE components: 0xD.0 EAX:EDX (XCR0's), 0xD.1 ECX:EDX
// (IA32_XSS's).
constexpr std::array<x86::FeatureBits, 4> kXsaveComponents{{
    {0xd, 0, 0, kAll},
    {0xd, 0, 3, kAll},
    {0xd, 1, 2, kAll},
    {0xd, 1, 3, kAll},
}};

// The highest basic and extended leaves, in EAX of leaves 0 and 0x80000000.
constexpr std::array<uint32_t, 2> kMaxLeaf{0x0, 0x80000000};

const CpuidLeafModifier* find(const CpuTemplate& t, uint32_t leaf, uint32_t subleaf) {
    for (const auto& m : t.cpuid_modifiers)
        if (m.leaf == leaf && m.subleaf == subleaf) return &m;
    return nullptr;
}

// The register's value in a dump; every dump gives all four.
uint32_t value_of(const CpuidLeafModifier& m, unsigned reg) {
    for (const auto& r : m.modifiers)
        if (static_cast<unsigned>(r.reg) == reg) return static_cast<uint32_t>(r.bitmap.value);
    return 0;
}

Result<void> check_is_dump(const CpuTemplate& t, size_t which) {
    for (const auto& m : t.cpuid_modifiers) {
        bool seen[4] = {};
        for (const auto& r : m.modifiers) {
            if (r.bitmap.mask != kAll)
                return fail("dump " + std::to_string(which + 1) + ": leaf " + hex32(m.leaf) +
                            ", subleaf " + hex32(m.subleaf) + ", " + std::string(name_of(r.reg)) +
                            " keeps bits (x): not a dump, which gives every bit");
            seen[static_cast<unsigned>(r.reg)] = true;
        }
        for (auto reg : kRegisters)
            if (!seen[static_cast<unsigned>(reg)])
                return fail("dump " + std::to_string(which + 1) + ": leaf " + hex32(m.leaf) +
                            ", subleaf " + hex32(m.subleaf) + " lacks " +
                            std::string(name_of(reg)) + ": not a dump, which gives every register");
    }
    return {};
}

}  // namespace

CpuTemplate dump_of(std::span<const kvm_cpuid_entry2> supported) {
    CpuTemplate t;
    for (const auto& e : supported) {
        CpuidLeafModifier& m = t.cpuid_modifiers.emplace_back();
        m.leaf = e.function;
        m.subleaf = e.index;
        m.flags = e.flags;
        for (auto [reg, value] : {std::pair{CpuidRegister::Eax, e.eax},
                                  {CpuidRegister::Ebx, e.ebx},
                                  {CpuidRegister::Ecx, e.ecx},
                                  {CpuidRegister::Edx, e.edx}})
            m.modifiers.push_back({reg, BitmapModifier{.mask = kAll, .value = value}});
    }
    return t;
}

Result<CpuTemplate> fleet_template(std::span<const CpuTemplate> dumps) {
    if (dumps.empty()) return fail("no dumps to intersect");
    for (size_t i = 0; i < dumps.size(); ++i) EMBER_TRY(check_is_dump(dumps[i], i));

    std::vector<x86::FeatureBits> features = x86::feature_bits();
    features.insert(features.end(), kXsaveComponents.begin(), kXsaveComponents.end());

    CpuTemplate out;
    auto modifier_for = [&](const CpuidLeafModifier& first) -> CpuidLeafModifier& {
        for (auto& m : out.cpuid_modifiers)
            if (m.leaf == first.leaf && m.subleaf == first.subleaf) return m;
        return out.cpuid_modifiers.emplace_back(CpuidLeafModifier{
            .leaf = first.leaf, .subleaf = first.subleaf, .flags = first.flags, .modifiers = {}});
    };
    // In the first dump's order, so the template reads as a dump does.
    for (const CpuidLeafModifier& first : dumps.front().cpuid_modifiers) {
        std::vector<const CpuidLeafModifier*> each;
        for (const auto& d : dumps)
            if (const auto* m = find(d, first.leaf, first.subleaf)) each.push_back(m);
        if (each.size() != dumps.size()) continue;

        for (const auto& f : features) {
            if (f.leaf != first.leaf || f.subleaf != first.subleaf) continue;
            uint32_t everywhere = kAll;
            for (const auto* m : each) everywhere &= value_of(*m, f.reg);
            const uint32_t cleared = ~everywhere & f.compared;
            if (cleared == 0) continue;
            modifier_for(first).modifiers.push_back(
                {kRegisters[f.reg], BitmapModifier{.mask = cleared, .value = 0}});
        }
        if (std::find(kMaxLeaf.begin(), kMaxLeaf.end(), first.leaf) != kMaxLeaf.end()) {
            uint32_t lowest = kAll;
            for (const auto* m : each) lowest = std::min(lowest, value_of(*m, 0));
            modifier_for(first).modifiers.push_back(
                {CpuidRegister::Eax, BitmapModifier{.mask = kAll, .value = lowest}});
        }
    }
    return out;
}

Result<x86::CpuShortfall> shortfall_under(const CpuTemplate& t,
                                          std::span<const kvm_cpuid_entry2> supported,
                                          std::span<const uint32_t> host_msrs) {
    auto guest = templated_cpuid({supported.begin(), supported.end()}, t);
    EMBER_TRY(guest);
    // The XSAVE components a guest may enable: those the template leaves in 0xD.0.
    uint64_t xcr0 = 1;
    for (const auto& e : *guest)
        if (e.function == 0xd && e.index == 0) xcr0 = uint64_t{e.edx} << 32 | e.eax;
    x86::CpuShortfall s = x86::cpu_shortfall(*guest, xcr0, {}, supported, host_msrs);
    for (const auto& m : t.msr_modifiers)
        if (std::find(host_msrs.begin(), host_msrs.end(), m.addr) == host_msrs.end())
            s.msrs.push_back(m.addr);
    return s;
}

}  // namespace ember
