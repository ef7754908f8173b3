// A custom CPU template, as Firecracker's PUT /cpu-config takes it: bitmaps that clear, set or
// keep bits of CPUID registers and of MSRs the guest is booted with, and KVM capabilities the host
// must have. Typed once here; api/json reads the body, the VMM applies it at boot (before ember's
// own topology edits, as Firecracker applies a template before its CPUID normalization).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/error.h"

namespace ember {

// Firecracker's bitmap "0b[01x]{n}": each bit cleared (0), set (1) or left as it was (x). `mask`
// has the bits it sets or clears; `value` what they become.
struct BitmapModifier {
    uint64_t mask = 0;
    uint64_t value = 0;

    uint64_t applied_to(uint64_t v) const { return (v & ~mask) | (value & mask); }
    bool operator==(const BitmapModifier&) const = default;
};

enum class CpuidRegister : uint8_t { Eax, Ebx, Ecx, Edx };

struct CpuidRegisterModifier {
    CpuidRegister reg = CpuidRegister::Eax;
    BitmapModifier bitmap;
    bool operator==(const CpuidRegisterModifier&) const = default;
};

struct CpuidLeafModifier {
    uint32_t leaf = 0;
    uint32_t subleaf = 0;
    uint32_t flags = 0;  // KVM's, as KVM_GET_SUPPORTED_CPUID writes them
    std::vector<CpuidRegisterModifier> modifiers;
    bool operator==(const CpuidLeafModifier&) const = default;
};

struct MsrModifier {
    uint32_t addr = 0;
    BitmapModifier bitmap;
    bool operator==(const MsrModifier&) const = default;
};

// "121" asks that the host's KVM have capability 121; "!121" takes it off the checks.
struct KvmCapabilityModifier {
    uint32_t capability = 0;
    bool removed = false;
    bool operator==(const KvmCapabilityModifier&) const = default;
};

// Bounds on a template, wherever one comes from: far more than any CPU has leaves or MSRs worth
// changing.
inline constexpr size_t kMaxCpuidModifiers = 256;
inline constexpr size_t kMaxRegisterModifiers = 16;
inline constexpr size_t kMaxMsrModifiers = 256;
inline constexpr size_t kMaxKvmCapabilities = 64;

struct CpuTemplate {
    std::vector<KvmCapabilityModifier> kvm_capabilities;
    std::vector<CpuidLeafModifier> cpuid_modifiers;
    std::vector<MsrModifier> msr_modifiers;
    bool operator==(const CpuTemplate&) const = default;
};

// A bitmap of `bits` (32 or 64) bits: 0, 1 and x after an optional "0b", with "_" between them
// as the user likes; a shorter one keeps (x) the high bits it leaves out, and "0b" alone keeps
// all. Firecracker's rules. `where` names the field in errors.
Result<BitmapModifier> parse_bitmap(std::string_view text, unsigned bits, const std::string& where);

// A leaf, subleaf or MSR address as Firecracker's templates write them: "0x" hexadecimal or "0b"
// binary (a bare decimal is refused, as Firecracker refuses it); at most `max`.
Result<uint64_t> parse_template_integer(std::string_view text, uint64_t max,
                                        const std::string& where);

// A KVM capability's number: decimal only, as Firecracker takes it.
Result<uint64_t> parse_decimal(std::string_view text, uint64_t max, const std::string& where);

std::string_view name_of(CpuidRegister reg);
// "121", or "!121" when removed.
std::string name_of(const KvmCapabilityModifier& c);
// "0b" and `bits` of 0, 1 or x, highest first: each bit at the full width.
std::string bitmap_text(const BitmapModifier& b, unsigned bits);

}  // namespace ember
