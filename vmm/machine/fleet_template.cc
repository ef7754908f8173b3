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
constexpr unsigned kEax = 0;

// The registers whose bits are XSAVE components: 0xD.0 EAX:EDX (XCR0's), 0xD.1 ECX:EDX
// (IA32_XSS's).
constexpr std::array<x86::FeatureBits, 4> kXsaveComponents{{
    {0xd, 0, 0, kAll},
    {0xd, 0, 3, kAll},
    {0xd, 1, 2, kAll},
    {0xd, 1, 3, kAll},
}};

// Where a guest reads how far to look: the highest basic leaf, the highest extended leaf, the
// highest subleaf of leaf 7, each in EAX. templated_cpuid() drops the entries past them.
struct Bound {
    uint32_t leaf;
    uint32_t subleaf;
};
constexpr std::array kBounds{Bound{0x0, 0}, Bound{0x80000000, 0}, Bound{0x7, 0}};

// 0x80000008 EAX: the physical (bits 7-0) and linear (15-8) address widths.
constexpr uint32_t kAddressSizes = 0x80000008;

std::string named(uint32_t leaf, uint32_t subleaf) {
    return "leaf " + hex32(leaf) + ", subleaf " + hex32(subleaf);
}

std::string dump_name(size_t index) {
    return "dump " + std::to_string(index + 1);
}

const CpuidLeafModifier* find(const CpuTemplate& t, uint32_t leaf, uint32_t subleaf) {
    for (const auto& m : t.cpuid_modifiers)
        if (m.leaf == leaf && m.subleaf == subleaf) return &m;
    return nullptr;
}

// The register's value in a dump, which gives all four.
uint32_t value_of(const CpuidLeafModifier& m, unsigned reg) {
    for (const auto& r : m.modifiers)
        if (static_cast<unsigned>(r.reg) == reg) return static_cast<uint32_t>(r.bitmap.value);
    return 0;
}

uint32_t value_in(const CpuTemplate& dump, uint32_t leaf, uint32_t subleaf, unsigned reg) {
    const CpuidLeafModifier* m = find(dump, leaf, subleaf);
    return m ? value_of(*m, reg) : 0;
}

// A dump gives each of its (leaf, subleaf)s once, with all four registers in full, the leaves
// that say how far a guest looks among them, and nothing else.
Result<void> check_is_dump(const CpuTemplate& t, size_t index) {
    const std::string which = dump_name(index);
    if (!t.msr_modifiers.empty() || !t.kvm_capabilities.empty())
        return fail(which + ": sets MSRs or KVM capabilities: not a dump, which gives CPUID only");
    for (size_t i = 0; i < t.cpuid_modifiers.size(); ++i) {
        const auto& m = t.cpuid_modifiers[i];
        if (find(t, m.leaf, m.subleaf) != &m)
            return fail(which + ": " + named(m.leaf, m.subleaf) + " is given twice");
        unsigned seen = 0;
        for (const auto& r : m.modifiers) {
            const unsigned reg = 1u << static_cast<unsigned>(r.reg);
            if (r.bitmap.mask != kAll)
                return fail(which + ": " + named(m.leaf, m.subleaf) + ", " +
                            std::string(name_of(r.reg)) +
                            " keeps bits (x): not a dump, which gives every bit");
            if (seen & reg)
                return fail(which + ": " + named(m.leaf, m.subleaf) + ", " +
                            std::string(name_of(r.reg)) + " is given twice");
            seen |= reg;
        }
        for (auto reg : kRegisters)
            if (!(seen & (1u << static_cast<unsigned>(reg))))
                return fail(which + ": " + named(m.leaf, m.subleaf) + " lacks " +
                            std::string(name_of(reg)) + ": not a dump, which gives every register");
    }
    for (const Bound& b : {kBounds[0], kBounds[1]})
        if (find(t, b.leaf, b.subleaf) == nullptr)
            return fail(which + " lacks " + named(b.leaf, b.subleaf) +
                        ", which every CPU has: not a dump");
    return {};
}

// Leaf 0's vendor string, EBX, EDX, ECX.
std::array<uint32_t, 3> vendor_of(const CpuTemplate& dump) {
    return {value_in(dump, 0, 0, 1), value_in(dump, 0, 0, 3), value_in(dump, 0, 0, 2)};
}

// Whether a guest under the template, its bounds `lowest`, would look at (leaf, subleaf).
bool within(uint32_t leaf, uint32_t subleaf, const std::array<uint32_t, 3>& lowest) {
    if (leaf == 0x7 && subleaf > lowest[2]) return false;
    if (leaf >= 0x80000000) return leaf <= lowest[1];
    return leaf < 0x40000000 ? leaf <= lowest[0] : true;
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
    for (size_t i = 0; i < dumps.size(); ++i) {
        EMBER_TRY(check_is_dump(dumps[i], i));
        if (vendor_of(dumps[i]) != vendor_of(dumps.front()))
            return fail(dump_name(i) +
                        " is from another CPU vendor than dump 1: a template "
                        "cannot make one vendor's CPU pass for another's");
    }

    std::array<uint32_t, 3> lowest{kAll, kAll, kAll};
    for (size_t b = 0; b < kBounds.size(); ++b)
        for (const auto& d : dumps)
            lowest[b] = std::min(lowest[b], value_in(d, kBounds[b].leaf, kBounds[b].subleaf, kEax));

    std::vector<x86::FeatureBits> features = x86::feature_bits();
    features.insert(features.end(), kXsaveComponents.begin(), kXsaveComponents.end());

    // A register whose bits a load compares, given by one host and not by another, inside what a
    // guest looks at: no template can take it from the hosts that give it.
    for (const auto& f : features) {
        if (!within(f.leaf, f.subleaf, lowest)) continue;
        size_t missing = dumps.size();
        size_t given = dumps.size();
        for (size_t i = 0; i < dumps.size(); ++i)
            (find(dumps[i], f.leaf, f.subleaf) ? given : missing) = i;
        if (missing < dumps.size() && given < dumps.size())
            return fail(dump_name(missing) + " lacks " + named(f.leaf, f.subleaf) + ", which " +
                        dump_name(given) + " gives within the leaves every dump has");
    }

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
        for (size_t b = 0; b < kBounds.size(); ++b)
            if (kBounds[b].leaf == first.leaf && kBounds[b].subleaf == first.subleaf)
                modifier_for(first).modifiers.push_back(
                    {CpuidRegister::Eax, BitmapModifier{.mask = kAll, .value = lowest[b]}});
        if (first.leaf == kAddressSizes) {
            uint32_t physical = 0xff;
            uint32_t linear = 0xff;
            for (const auto* m : each) {
                physical = std::min(physical, value_of(*m, kEax) & 0xff);
                linear = std::min(linear, (value_of(*m, kEax) >> 8) & 0xff);
            }
            modifier_for(first).modifiers.push_back(
                {CpuidRegister::Eax,
                 BitmapModifier{.mask = 0xffff, .value = linear << 8 | physical}});
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
