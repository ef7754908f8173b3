#include "core/arch/x86_64/cpu_fit.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>

#include "core/base/hex.h"

namespace ember::x86 {
namespace {

enum class Reg { Eax, Ebx, Ecx, Edx };

using Names = std::array<const char*, 32>;

// A CPUID register whose bits are features, and the bits of it that are not compared.
struct FeatureRegister {
    uint32_t leaf;
    uint32_t subleaf;
    Reg reg;
    uint32_t not_compared;
    Names names;
};

constexpr uint32_t bit(int n) {
    return 1u << n;
}

// Names as /proc/cpuinfo prints them; nullptr where the bit has none there (or is reserved).
constexpr std::array kFeatureRegisters{
    FeatureRegister{0x1, 0, Reg::Edx, bit(28) /* HTT: ember's topology */,
                    Names{"fpu",  "vme",   "de",    "pse",     "tsc",   "msr", "pae",  "mce",
                          "cx8",  "apic",  nullptr, "sep",     "mtrr",  "pge", "mca",  "cmov",
                          "pat",  "pse36", "pn",    "clflush", nullptr, "dts", "acpi", "mmx",
                          "fxsr", "sse",   "sse2",  "ss",      "ht",    "tm",  "ia64", "pbe"}},
    // TSC-deadline: KVM emulates it whatever the CPU, and only newer KVMs report it.
    FeatureRegister{0x1, 0, Reg::Ecx,
                    bit(24) /* TSC-deadline */ | bit(27) /* OSXSAVE: CR4 */ | bit(31) /* ember's */,
                    Names{"pni",    "pclmulqdq", "dtes64",  "monitor", "ds_cpl",
                          "vmx",    "smx",       "est",     "tm2",     "ssse3",
                          "cid",    "sdbg",      "fma",     "cx16",    "xtpr",
                          "pdcm",   nullptr,     "pcid",    "dca",     "sse4_1",
                          "sse4_2", "x2apic",    "movbe",   "popcnt",  "tsc_deadline_timer",
                          "aes",    "xsave",     "osxsave", "avx",     "f16c",
                          "rdrand", "hypervisor"}},
    // Bits 6 and 13 say how the FPU reports, not what the guest may use.
    FeatureRegister{
        0x7, 0, Reg::Ebx, bit(6) | bit(13),
        Names{"fsgsbase", "tsc_adjust", "sgx",      "bmi1",       "hle",      "avx2",
              nullptr,    "smep",       "bmi2",     "erms",       "invpcid",  "rtm",
              "cqm",      nullptr,      "mpx",      "rdt_a",      "avx512f",  "avx512dq",
              "rdseed",   "adx",        "smap",     "avx512ifma", nullptr,    "clflushopt",
              "clwb",     "intel_pt",   "avx512pf", "avx512er",   "avx512cd", "sha_ni",
              "avx512bw", "avx512vl"}},
    FeatureRegister{
        0x7, 0, Reg::Ecx, bit(4) /* OSPKE: CR4 */,
        Names{nullptr,      "avx512vbmi",   "umip",          "pku",       "ospke",
              "waitpkg",    "avx512_vbmi2", "shstk",         "gfni",      "vaes",
              "vpclmulqdq", "avx512_vnni",  "avx512_bitalg", "tme",       "avx512_vpopcntdq",
              nullptr,      "la57",         nullptr,         nullptr,     nullptr,
              nullptr,      nullptr,        "rdpid",         nullptr,     "bus_lock_detect",
              "cldemote",   nullptr,        "movdiri",       "movdir64b", "enqcmd",
              "sgx_lc",     nullptr}},
    FeatureRegister{0x7, 0, Reg::Edx, 0,
                    Names{nullptr,         nullptr,         "avx512_4vnniw",
                          "avx512_4fmaps", "fsrm",          nullptr,
                          nullptr,         nullptr,         "avx512_vp2intersect",
                          nullptr,         "md_clear",      nullptr,
                          nullptr,         nullptr,         "serialize",
                          "hybrid_cpu",    "tsxldtrk",      nullptr,
                          "pconfig",       "arch_lbr",      "ibt",
                          nullptr,         "amx_bf16",      "avx512_fp16",
                          "amx_tile",      "amx_int8",      "spec_ctrl",
                          "intel_stibp",   "flush_l1d",     "arch_capabilities",
                          nullptr,         "spec_ctrl_ssbd"}},
    FeatureRegister{
        0x7, 1, Reg::Eax, 0,
        Names{nullptr, nullptr, nullptr, nullptr, "avx_vnni", "avx512_bf16", nullptr, nullptr,
              nullptr, nullptr, "fzrm",  "fsrs",  "fsrc",     nullptr,       nullptr, nullptr,
              nullptr, nullptr, nullptr, nullptr, nullptr,    nullptr,       nullptr, "avx_ifma",
              nullptr, nullptr, "lam",   nullptr, nullptr,    nullptr,       nullptr, nullptr}},
    // The controls a guest may set in SPEC_CTRL (PSFD, IPRED, RRSBA, DDPD_U, BHI): a SPEC_CTRL
    // value a host without them cannot take back. Bit 5 and above are "not affected" hints.
    FeatureRegister{0x7, 2, Reg::Edx, ~0x1fu, Names{}},
    FeatureRegister{
        0xd, 1, Reg::Eax, 0,
        Names{"xsaveopt", "xsavec", "xgetbv1", "xsaves", "xfd",   nullptr, nullptr, nullptr,
              nullptr,    nullptr,  nullptr,   nullptr,  nullptr, nullptr, nullptr, nullptr,
              nullptr,    nullptr,  nullptr,   nullptr,  nullptr, nullptr, nullptr, nullptr,
              nullptr,    nullptr,  nullptr,   nullptr,  nullptr, nullptr, nullptr, nullptr}},
    FeatureRegister{0x80000001, 0, Reg::Ecx, 0,
                    Names{"lahf_lm", "cmp_legacy", "svm",         "extapic",       "cr8_legacy",
                          "abm",     "sse4a",      "misalignsse", "3dnowprefetch", "osvw",
                          "ibs",     "xop",        "skinit",      "wdt",           nullptr,
                          "lwp",     "fma4",       "tce",         nullptr,         "nodeid_msr",
                          nullptr,   "tbm",        "topoext",     "perfctr_core",  "perfctr_nb",
                          nullptr,   "bpext",      "ptsc",        "perfctr_llc",   "mwaitx",
                          nullptr,   nullptr}},
    // On AMD, bits 0-9, 12-17, 23 and 24 repeat leaf 1's EDX (compared there); Intel has 0 here.
    FeatureRegister{
        0x80000001, 0, Reg::Edx, 0x0183f3ffu,
        Names{nullptr, nullptr,    nullptr,   nullptr,   nullptr, nullptr, nullptr,    nullptr,
              nullptr, nullptr,    nullptr,   "syscall", nullptr, nullptr, nullptr,    nullptr,
              nullptr, nullptr,    nullptr,   "mp",      "nx",    nullptr, "mmxext",   nullptr,
              nullptr, "fxsr_opt", "pdpe1gb", "rdtscp",  nullptr, "lm",    "3dnowext", "3dnow"}},
    FeatureRegister{
        0x80000007, 0, Reg::Edx, 0,
        Names{nullptr,       nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
              "nonstop_tsc", nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
              nullptr,       nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
              nullptr,       nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr}},
    // Automatic IBRS: a guest that uses it sets EFER bit 21, which a host without it refuses.
    // SBPB: a guest that has it writes it to PRED_CMD, which a host without it answers with a #GP.
    // The other bits of the leaf describe how the CPU behaves, not what a guest may turn on.
    FeatureRegister{0x80000021, 0, Reg::Eax, ~(bit(8) | bit(27)),
                    Names{nullptr, nullptr,    nullptr, nullptr, nullptr, nullptr, nullptr,
                          nullptr, "autoibrs", nullptr, nullptr, nullptr, nullptr, nullptr,
                          nullptr, nullptr,    nullptr, nullptr, nullptr, nullptr, nullptr,
                          nullptr, nullptr,    nullptr, nullptr, nullptr, nullptr, "sbpb"}},
    // KVM's paravirtual features: each a hypercall or an MSR the guest's kernel then uses.
    FeatureRegister{0x40000001, 0, Reg::Eax, 0,
                    Names{"kvm_clocksource",
                          "kvm_nop_io_delay",
                          "kvm_mmu_op",
                          "kvm_clocksource2",
                          "kvm_async_pf",
                          "kvm_steal_time",
                          "kvm_pv_eoi",
                          "kvm_pv_unhalt",
                          nullptr,
                          "kvm_pv_tlb_flush",
                          "kvm_async_pf_vmexit",
                          "kvm_pv_send_ipi",
                          "kvm_poll_control",
                          "kvm_pv_sched_yield",
                          "kvm_async_pf_int",
                          "kvm_msi_ext_dest_id",
                          "kvm_hc_map_gpa_range",
                          "kvm_migration_control",
                          nullptr,
                          nullptr,
                          nullptr,
                          nullptr,
                          nullptr,
                          nullptr,
                          "kvm_clocksource_stable"}},
    // Bits 17, 18, 26, 29 and 30 are hints KVM makes up per kernel version ("always on", "not
    // affected"): no instruction depends on them.
    FeatureRegister{
        0x80000008, 0, Reg::Ebx, bit(17) | bit(18) | bit(26) | bit(29) | bit(30),
        Names{"clzero",   nullptr,     "xsaveerptr", nullptr, "rdpru", nullptr, nullptr, nullptr,
              nullptr,    "wbnoinvd",  nullptr,      nullptr, "ibpb",  nullptr, "ibrs",  "stibp",
              nullptr,    nullptr,     nullptr,      nullptr, nullptr, nullptr, nullptr, nullptr,
              "amd_ssbd", "virt_ssbd", nullptr,      nullptr, nullptr, nullptr, nullptr, nullptr}},
};

// XCR0's components, as the kernel's x86/fpu lines name them (the others are IA32_XSS's, never
// in XCR0).
constexpr Names kXsaveComponents{"x87",
                                 "sse",
                                 "avx",
                                 "mpx_bndregs",
                                 "mpx_bndcsr",
                                 "avx512_opmask",
                                 "avx512_zmm_hi256",
                                 "avx512_hi16_zmm",
                                 nullptr,
                                 "pkru",
                                 nullptr,
                                 nullptr,
                                 nullptr,
                                 nullptr,
                                 nullptr,
                                 nullptr,
                                 nullptr,
                                 "amx_tilecfg",
                                 "amx_tiledata",
                                 nullptr,
                                 nullptr,
                                 nullptr,
                                 nullptr,
                                 nullptr,
                                 nullptr,
                                 nullptr,
                                 nullptr,
                                 nullptr,
                                 nullptr,
                                 nullptr,
                                 nullptr,
                                 nullptr};

const kvm_cpuid_entry2* find(std::span<const kvm_cpuid_entry2> cpuid, uint32_t leaf,
                             uint32_t subleaf) {
    for (const auto& e : cpuid) {
        if (e.function != leaf) continue;
        if ((e.flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) && e.index != subleaf) continue;
        return &e;
    }
    return nullptr;
}

uint32_t value(const kvm_cpuid_entry2& e, Reg r) {
    switch (r) {
        case Reg::Eax: return e.eax;
        case Reg::Ebx: return e.ebx;
        case Reg::Ecx: return e.ecx;
        case Reg::Edx: return e.edx;
    }
    return 0;
}

std::string unnamed_bit(const FeatureRegister& f, int n) {
    static constexpr std::array kRegs{"eax", "ebx", "ecx", "edx"};
    char text[64];
    std::snprintf(text, sizeof text, "cpuid 0x%x.%u %s bit %d", f.leaf, f.subleaf,
                  kRegs[static_cast<size_t>(f.reg)], n);
    return text;
}

std::string joined(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
    return out;
}

}  // namespace

CpuShortfall cpu_shortfall(std::span<const kvm_cpuid_entry2> guest, uint64_t xcr0,
                           std::span<const kvm_msr_entry> guest_msrs,
                           std::span<const kvm_cpuid_entry2> host,
                           std::span<const uint32_t> host_msrs) {
    CpuShortfall s;
    for (const auto& f : kFeatureRegisters) {
        const kvm_cpuid_entry2* g = find(guest, f.leaf, f.subleaf);
        if (g == nullptr) continue;
        const kvm_cpuid_entry2* h = find(host, f.leaf, f.subleaf);
        const uint32_t lacking = value(*g, f.reg) & ~(h ? value(*h, f.reg) : 0) & ~f.not_compared;
        for (int n = 0; n < 32; ++n) {
            if (!(lacking & bit(n))) continue;
            const char* name = f.names[static_cast<size_t>(n)];
            s.features.push_back(name ? name : unnamed_bit(f, n));
        }
    }
    const kvm_cpuid_entry2* xsave = find(host, 0xd, 0);
    const uint64_t offered = xsave ? (uint64_t{xsave->edx} << 32 | xsave->eax) : 1;
    for (int n = 0; n < 64; ++n) {
        if (!(xcr0 & ~offered & (uint64_t{1} << n))) continue;
        const char* name = n < 32 ? kXsaveComponents[static_cast<size_t>(n)] : nullptr;
        s.xsave.push_back(name ? name : "XCR0 bit " + std::to_string(n));
    }
    // Sorted: a state file may hold thousands of MSRs per vCPU. An MSR at 0 that this host's KVM
    // does not list is one another kernel saves and this one has no state for (Hyper-V's without
    // CONFIG_KVM_HYPERV, say): the load leaves it out (not_restored) rather than refusing.
    std::vector<uint32_t> offered_msrs(host_msrs.begin(), host_msrs.end());
    std::sort(offered_msrs.begin(), offered_msrs.end());
    for (const kvm_msr_entry& m : guest_msrs)
        if (m.data != 0 && !std::binary_search(offered_msrs.begin(), offered_msrs.end(), m.index))
            s.msrs.push_back(m.index);
    std::sort(s.msrs.begin(), s.msrs.end());
    s.msrs.erase(std::unique(s.msrs.begin(), s.msrs.end()), s.msrs.end());
    return s;
}

std::vector<FeatureBits> feature_bits() {
    std::vector<FeatureBits> out;
    out.reserve(kFeatureRegisters.size());
    for (const auto& f : kFeatureRegisters)
        out.push_back({f.leaf, f.subleaf, static_cast<unsigned>(f.reg), ~f.not_compared});
    return out;
}

bool not_restored(const kvm_msr_entry& m, std::span<const uint32_t> host_msrs) {
    return m.data == 0 && std::find(host_msrs.begin(), host_msrs.end(), m.index) == host_msrs.end();
}

std::string describe(const CpuShortfall& s) {
    std::vector<std::string> parts;
    if (!s.features.empty())
        parts.push_back("this host lacks " + joined(s.features) +
                        " that the guest was booted with");
    if (!s.xsave.empty())
        parts.push_back("its KVM cannot save the XSAVE state " + joined(s.xsave) +
                        " that the guest enabled");
    if (!s.msrs.empty()) {
        std::vector<std::string> msrs;
        msrs.reserve(s.msrs.size());
        for (uint32_t m : s.msrs) msrs.push_back(hex32(m));
        parts.push_back("its KVM does not restore the MSRs " + joined(msrs) +
                        " that the snapshot saved");
    }
    if (parts.empty()) return "the guest's CPU fits this host";
    std::string out = parts.front();
    for (size_t i = 1; i < parts.size(); ++i) out += "; " + parts[i];
    return out + "; restore it on a host whose CPU and KVM have them";
}

std::string cpu_vendor(std::span<const kvm_cpuid_entry2> cpuid) {
    const kvm_cpuid_entry2* e = find(cpuid, 0, 0);
    if (e == nullptr) return {};
    char text[13] = {};
    std::memcpy(text, &e->ebx, 4);
    std::memcpy(text + 4, &e->edx, 4);
    std::memcpy(text + 8, &e->ecx, 4);
    // From a state file, so from anywhere: nothing of it reaches a log or a terminal raw.
    std::string out(text);
    for (char& c : out)
        if (c < 0x20 || c > 0x7e) c = '?';
    return out;
}

}  // namespace ember::x86
