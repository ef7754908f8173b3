#include "core/arch/x86_64/saved_msrs.h"

#include <algorithm>
#include <array>

namespace ember::x86 {
namespace {

struct Range {
    uint32_t first;
    uint32_t last;
    bool contains(uint32_t index) const { return index >= first && index <= last; }
};

// The guest's state on every x86-64 vCPU, whatever its CPUID.
constexpr std::array kAlways{
    Range{0x10, 0x10},              // TSC
    Range{0x11, 0x12},              // KVM's first clock MSRs
    Range{0x1b, 0x1b},              // APIC base
    Range{0x3b, 0x3b},              // TSC_ADJUST
    Range{0x140, 0x140},            // MISC_FEATURES_ENABLES (CPUID faulting)
    Range{0x174, 0x176},            // SYSENTER
    Range{0x17a, 0x17b},            // MCG_STATUS, MCG_CTL
    Range{0x1a0, 0x1a0},            // MISC_ENABLE
    Range{0x1d9, 0x1d9},            // DEBUGCTL
    Range{0x1db, 0x1de},            // the last branch and exception records (AMD's LBR)
    Range{0x1fc, 0x1fc},            // POWER_CTL
    Range{0x200, 0x21f},            // variable MTRRs
    Range{0x250, 0x250},            // fixed MTRRs
    Range{0x258, 0x259},            //
    Range{0x268, 0x26f},            //
    Range{0x277, 0x277},            // PAT
    Range{0x2ff, 0x2ff},            // MTRRdefType
    Range{0x400, 0x47f},            // machine-check banks
    Range{0x4d0, 0x4d0},            // MCG_EXT_CTL
    Range{0x6e0, 0x6e0},            // TSC_DEADLINE
    Range{0xc1, 0xc8},              // Intel's counters, their selectors, fixed counters,
    Range{0x186, 0x18d},            // controls and full-width counters: zero in a guest
    Range{0x309, 0x30b},            // that never used them, which any host takes
    Range{0x38d, 0x390},            //
    Range{0x4c1, 0x4c8},            //
    Range{0x3f1, 0x3f2},            // PEBS
    Range{0x600, 0x600},            // DS_AREA
    Range{0xc0000080, 0xc0000084},  // EFER, STAR, LSTAR, CSTAR, SFMASK
    Range{0xc0000100, 0xc0000102},  // FS, GS, KERNEL_GS base
    Range{0xc0000300, 0xc0000303},  // AMD's counters, their global controls,
    Range{0xc0010000, 0xc0010007},  //
    Range{0xc0010200, 0xc001020b},  //
    Range{0xc0010015, 0xc0010015},  // HWCR
    Range{0x4b564d00, 0x4b564dff},  // KVM's paravirtual MSRs
};

// Left to the destination's KVM, as the header says: the host's description, or the state of
// what ember's guests never have (SMM's SMBASE, Hyper-V's enlightenments: ember gives no Hyper-V
// CPUID leaves, and KVM serves those MSRs only to a vCPU that enabled them).
constexpr std::array kLeftOut{
    Range{0x34, 0x34},              // SMI_COUNT
    Range{0x8b, 0x8b},              // UCODE_REV
    Range{0x9e, 0x9e},              // SMBASE
    Range{0xce, 0xcf},              // PLATFORM_INFO, CORE_CAPABILITIES
    Range{0x10a, 0x10a},            // ARCH_CAPABILITIES
    Range{0x179, 0x179},            // MCG_CAP
    Range{0x345, 0x345},            // PERF_CAPABILITIES
    Range{0x480, 0x491},            // VMX capabilities
    Range{0xc0011029, 0xc0011029},  // DE_CFG
    Range{0x40000000, 0x400001ff},  // Hyper-V's
};

struct Implied {
    Range msrs;
    // Saved when the guest's CPUID has any of these bits: (leaf, subleaf, register 0-3, bit).
    std::array<std::array<uint32_t, 4>, 3> by;
};

constexpr uint32_t kNone = 0xffffffff;

// MSRs that belong to a feature, saved only when the guest was given it.
constexpr std::array kImplied{
    Implied{{0xc0000103, 0xc0000103}, {{{0x80000001, 0, 3, 27}, {0x7, 0, 2, 22}, {kNone}}}},
    // SPEC_CTRL: Intel's IBRS, STIBP, SSBD; AMD's.
    Implied{{0x48, 0x48}, {{{0x7, 0, 3, 26}, {0x7, 0, 3, 31}, {0x80000008, 0, 1, 14}}}},
    Implied{{0x48, 0x48}, {{{0x80000008, 0, 1, 15}, {0x80000008, 0, 1, 24}, {kNone}}}},
    Implied{{0xc001011f, 0xc001011f}, {{{0x80000008, 0, 1, 25}, {kNone}, {kNone}}}},  // virt_ssbd
    Implied{{0xda0, 0xda0}, {{{0xd, 1, 0, 3}, {kNone}, {kNone}}}},                    // XSS: xsaves
    Implied{{0x1c4, 0x1c5}, {{{0xd, 1, 0, 4}, {kNone}, {kNone}}}},                    // XFD: xfd
    Implied{{0xe1, 0xe1}, {{{0x7, 0, 2, 5}, {kNone}, {kNone}}}},            // UMWAIT_CONTROL
    Implied{{0x6a0, 0x6a8}, {{{0x7, 0, 2, 7}, {0x7, 0, 3, 20}, {kNone}}}},  // CET: shstk, ibt
    Implied{{0x6e1, 0x6e1}, {{{0x7, 0, 2, 31}, {kNone}, {kNone}}}},         // PKRS: pks
    Implied{{0x3a, 0x3a}, {{{0x1, 0, 2, 5}, {kNone}, {kNone}}}},            // FEAT_CTL: vmx
    Implied{{0xc0010117, 0xc0010117}, {{{0x80000001, 0, 2, 2}, {kNone}, {kNone}}}},  // svm
    Implied{{0xc0000104, 0xc0000104}, {{{0x80000001, 0, 2, 2}, {kNone}, {kNone}}}},  // TSC ratio
    Implied{{0x122, 0x122}, {{{0x7, 0, 3, 29}, {kNone}, {kNone}}}},  // TSX_CTRL: arch_capabilities
    Implied{{0xd90, 0xd90}, {{{0x7, 0, 1, 14}, {kNone}, {kNone}}}},  // BNDCFGS: mpx
    Implied{{0x560, 0x587}, {{{0x7, 0, 1, 25}, {kNone}, {kNone}}}},  // RTIT: intel_pt
    // Architectural LBRs: their controls, depth, records and their infos.
    Implied{{0x14ce, 0x14cf}, {{{0x7, 0, 3, 19}, {kNone}, {kNone}}}},
    Implied{{0x1500, 0x16ff}, {{{0x7, 0, 3, 19}, {kNone}, {kNone}}}},
    Implied{{0x1200, 0x12ff}, {{{0x7, 0, 3, 19}, {kNone}, {kNone}}}},
};

bool has(std::span<const kvm_cpuid_entry2> cpuid, const std::array<uint32_t, 4>& bit) {
    if (bit[0] == kNone) return false;
    for (const auto& e : cpuid) {
        if (e.function != bit[0] || e.index != bit[1]) continue;
        const uint32_t regs[4] = {e.eax, e.ebx, e.ecx, e.edx};
        return (regs[bit[2]] >> bit[3]) & 1;
    }
    return false;
}

bool saved(uint32_t index, std::span<const kvm_cpuid_entry2> guest_cpuid) {
    for (const Range& r : kAlways)
        if (r.contains(index)) return true;
    for (const Implied& i : kImplied)
        if (i.msrs.contains(index))
            for (const auto& bit : i.by)
                if (has(guest_cpuid, bit)) return true;
    return false;
}

}  // namespace

std::vector<uint32_t> msrs_to_save(std::span<const uint32_t> host_list,
                                   std::span<const kvm_cpuid_entry2> guest_cpuid,
                                   std::span<const uint32_t> template_msrs) {
    std::vector<uint32_t> out;
    for (uint32_t index : host_list)
        if (saved(index, guest_cpuid) ||
            std::find(template_msrs.begin(), template_msrs.end(), index) != template_msrs.end())
            out.push_back(index);
    return out;
}

std::vector<uint32_t> unclassified_msrs(std::span<const uint32_t> host_list) {
    auto in = [](const auto& ranges, uint32_t index) {
        return std::ranges::any_of(ranges, [&](const Range& r) { return r.contains(index); });
    };
    std::vector<uint32_t> out;
    for (uint32_t index : host_list) {
        const bool implied =
            std::ranges::any_of(kImplied, [&](const Implied& i) { return i.msrs.contains(index); });
        if (!in(kAlways, index) && !in(kLeftOut, index) && !implied) out.push_back(index);
    }
    return out;
}

}  // namespace ember::x86
