#include "snapshot/cpu_template_section.h"

#include <string>

#include "core/base/bytes.h"

namespace ember::snapshot {
namespace {

void put_bitmap(ByteWriter& w, const BitmapModifier& b) {
    w.put(b.mask);
    w.put(b.value);
}

Result<BitmapModifier> get_bitmap(ByteReader& r, unsigned bits) {
    BitmapModifier b;
    EMBER_TRY(read_into(r, b.mask));
    EMBER_TRY(read_into(r, b.value));
    const uint64_t width = bits == 64 ? ~uint64_t{0} : (uint64_t{1} << bits) - 1;
    if ((b.mask | b.value) & ~width)
        return fail("cpu template: a bitmap wider than its " + std::to_string(bits) + " bits");
    return b;
}

// A count of what follows, at most `most`.
Result<uint32_t> get_count(ByteReader& r, size_t most, const char* what) {
    auto n = r.get<uint32_t>();
    EMBER_TRY(n);
    if (*n > most)
        return fail("cpu template: " + std::to_string(*n) + " " + what + ", more than " +
                    std::to_string(most));
    return n;
}

}  // namespace

std::vector<uint8_t> encode(const CpuTemplate& t) {
    ByteWriter w;
    w.put(static_cast<uint32_t>(t.kvm_capabilities.size()));
    for (const auto& c : t.kvm_capabilities) {
        w.put(c.capability);
        w.put(static_cast<uint8_t>(c.removed));
    }
    w.put(static_cast<uint32_t>(t.cpuid_modifiers.size()));
    for (const auto& m : t.cpuid_modifiers) {
        w.put(m.leaf);
        w.put(m.subleaf);
        w.put(m.flags);
        w.put(static_cast<uint32_t>(m.modifiers.size()));
        for (const auto& r : m.modifiers) {
            w.put(static_cast<uint8_t>(r.reg));
            put_bitmap(w, r.bitmap);
        }
    }
    w.put(static_cast<uint32_t>(t.msr_modifiers.size()));
    for (const auto& m : t.msr_modifiers) {
        w.put(m.addr);
        put_bitmap(w, m.bitmap);
    }
    return w.bytes();
}

Result<CpuTemplate> decode_cpu_template(std::span<const uint8_t> payload) {
    ByteReader r(payload, "cpu template");
    CpuTemplate t;
    auto capabilities = get_count(r, kMaxKvmCapabilities, "KVM capabilities");
    EMBER_TRY(capabilities);
    for (uint32_t i = 0; i < *capabilities; ++i) {
        KvmCapabilityModifier& c = t.kvm_capabilities.emplace_back();
        EMBER_TRY(read_into(r, c.capability));
        auto removed = r.get_flag();
        EMBER_TRY(removed);
        c.removed = *removed;
    }
    auto leaves = get_count(r, kMaxCpuidModifiers, "CPUID modifiers");
    EMBER_TRY(leaves);
    for (uint32_t i = 0; i < *leaves; ++i) {
        CpuidLeafModifier& m = t.cpuid_modifiers.emplace_back();
        EMBER_TRY(read_into(r, m.leaf));
        EMBER_TRY(read_into(r, m.subleaf));
        EMBER_TRY(read_into(r, m.flags));
        auto registers = get_count(r, kMaxRegisterModifiers, "register modifiers");
        EMBER_TRY(registers);
        for (uint32_t j = 0; j < *registers; ++j) {
            auto reg = r.get<uint8_t>();
            EMBER_TRY(reg);
            if (*reg > static_cast<uint8_t>(CpuidRegister::Edx))
                return fail("cpu template: register " + std::to_string(*reg) + " is not one");
            auto bitmap = get_bitmap(r, 32);
            EMBER_TRY(bitmap);
            m.modifiers.push_back({static_cast<CpuidRegister>(*reg), *bitmap});
        }
    }
    auto msrs = get_count(r, kMaxMsrModifiers, "MSR modifiers");
    EMBER_TRY(msrs);
    for (uint32_t i = 0; i < *msrs; ++i) {
        MsrModifier& m = t.msr_modifiers.emplace_back();
        EMBER_TRY(read_into(r, m.addr));
        auto bitmap = get_bitmap(r, 64);
        EMBER_TRY(bitmap);
        m.bitmap = *bitmap;
    }
    if (!r.done())
        return fail("cpu template: " + std::to_string(r.remaining()) + " bytes too many");
    return t;
}

}  // namespace ember::snapshot
