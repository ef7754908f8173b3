#include "api/json/cpu_config_json.h"

#include <cstdint>
#include <limits>

#include "api/json/fields.h"
#include "core/base/hex.h"

namespace ember::json {
namespace {

constexpr uint32_t kU32Max = std::numeric_limits<uint32_t>::max();

// Each element of the array field `key` as an object, read by `item` (Fields of it, its path);
// none when absent, and never more than `most`.
template <typename T, typename F>
Result<std::vector<T>> objects(Fields& parent, const char* key, size_t most, F&& item) {
    auto a = parent.array(key);
    EMBER_TRY(a);
    std::vector<T> out;
    if (!*a) return out;
    if ((*a)->size() > most)
        return fail(parent.path_of(key) + ": more than " + std::to_string(most) + " entries");
    size_t index = 0;
    for (auto element : **a) {
        const std::string path = parent.path_of(key) + "[" + std::to_string(index++) + "]";
        simdjson::dom::object o;
        if (element.get_object().get(o))
            return fail(path + ": expected an object, got " + type_name(element.type()));
        Fields f(o, path);
        auto value = item(f);
        EMBER_TRY(value);
        EMBER_TRY(f.finish());
        out.push_back(std::move(*value));
    }
    return out;
}

Result<uint64_t> integer_field(Fields& f, const char* key, uint64_t max) {
    auto text = f.required(f.string(key), key);
    EMBER_TRY(text);
    return parse_template_integer(*text, max, f.path_of(key));
}

Result<BitmapModifier> bitmap_field(Fields& f, unsigned bits) {
    auto text = f.required(f.string("bitmap"), "bitmap");
    EMBER_TRY(text);
    return parse_bitmap(*text, bits, f.path_of("bitmap"));
}

Result<CpuidRegisterModifier> register_modifier(Fields& f) {
    auto name = f.required(f.string("register"), "register");
    EMBER_TRY(name);
    CpuidRegisterModifier m;
    bool known = false;
    for (auto reg :
         {CpuidRegister::Eax, CpuidRegister::Ebx, CpuidRegister::Ecx, CpuidRegister::Edx})
        if (*name == name_of(reg)) {
            m.reg = reg;
            known = true;
        }
    if (!known)
        return fail(f.path_of("register") +
                    ": unknown variant, expected one of `eax`, `ebx`, `ecx`, `edx`");
    auto bitmap = bitmap_field(f, 32);
    EMBER_TRY(bitmap);
    m.bitmap = *bitmap;
    return m;
}

Result<CpuidLeafModifier> leaf_modifier(Fields& f) {
    CpuidLeafModifier m;
    auto leaf = integer_field(f, "leaf", kU32Max);
    EMBER_TRY(leaf);
    auto subleaf = integer_field(f, "subleaf", kU32Max);
    EMBER_TRY(subleaf);
    auto flags = f.required(f.u32("flags"), "flags");
    EMBER_TRY(flags);
    auto listed = f.required(f.array("modifiers"), "modifiers");  // required, as in Firecracker
    EMBER_TRY(listed);
    auto modifiers =
        objects<CpuidRegisterModifier>(f, "modifiers", kMaxRegisterModifiers, register_modifier);
    EMBER_TRY(modifiers);
    m.leaf = static_cast<uint32_t>(*leaf);
    m.subleaf = static_cast<uint32_t>(*subleaf);
    m.flags = *flags;
    m.modifiers = std::move(*modifiers);
    return m;
}

Result<MsrModifier> msr_modifier(Fields& f) {
    auto addr = integer_field(f, "addr", kU32Max);
    EMBER_TRY(addr);
    auto bitmap = bitmap_field(f, 64);
    EMBER_TRY(bitmap);
    return MsrModifier{.addr = static_cast<uint32_t>(*addr), .bitmap = *bitmap};
}

Result<std::vector<KvmCapabilityModifier>> capabilities(Fields& f) {
    auto a = f.array("kvm_capabilities");
    EMBER_TRY(a);
    std::vector<KvmCapabilityModifier> out;
    if (!*a) return out;
    if ((*a)->size() > kMaxKvmCapabilities)
        return fail("kvm_capabilities: more than " + std::to_string(kMaxKvmCapabilities) +
                    " entries");
    size_t index = 0;
    for (auto element : **a) {
        const std::string path = "kvm_capabilities[" + std::to_string(index++) + "]";
        std::string_view text;
        if (element.get_string().get(text))
            return fail(path + ": expected a string, got " + type_name(element.type()));
        KvmCapabilityModifier m;
        if (text.starts_with("!")) {
            m.removed = true;
            text.remove_prefix(1);
        }
        auto number = parse_decimal(text, kU32Max, path);
        EMBER_TRY(number);
        m.capability = static_cast<uint32_t>(*number);
        out.push_back(m);
    }
    return out;
}

std::string bitmap_text(const BitmapModifier& b, unsigned bits) {
    std::string out = "0b";
    for (unsigned i = bits; i-- > 0;) {
        const uint64_t bit = uint64_t{1} << i;
        out += !(b.mask & bit) ? 'x' : (b.value & bit) ? '1' : '0';
    }
    return out;
}

}  // namespace

// Appends only: GCC 12 warns (-Wrestrict, wrongly) on "literal" + std::string here.
std::string to_json(const CpuTemplate& t) {
    std::string out = "{\"kvm_capabilities\":[";
    for (size_t i = 0; i < t.kvm_capabilities.size(); ++i) {
        const auto& c = t.kvm_capabilities[i];
        out.append(i ? ",\"" : "\"").append(c.removed ? "!" : "");
        out.append(std::to_string(c.capability)).append("\"");
    }
    out.append("],\"cpuid_modifiers\":[");
    for (size_t i = 0; i < t.cpuid_modifiers.size(); ++i) {
        const auto& m = t.cpuid_modifiers[i];
        out.append(i ? "," : "").append("{\"leaf\":\"").append(hex32(m.leaf));
        out.append("\",\"subleaf\":\"").append(hex32(m.subleaf)).append("\",\"flags\":");
        out.append(std::to_string(m.flags)).append(",\"modifiers\":[");
        for (size_t j = 0; j < m.modifiers.size(); ++j) {
            out.append(j ? "," : "").append("{\"register\":\"");
            out.append(name_of(m.modifiers[j].reg)).append("\",\"bitmap\":\"");
            out.append(bitmap_text(m.modifiers[j].bitmap, 32)).append("\"}");
        }
        out.append("]}");
    }
    out.append("],\"msr_modifiers\":[");
    for (size_t i = 0; i < t.msr_modifiers.size(); ++i) {
        out.append(i ? "," : "").append("{\"addr\":\"").append(hex32(t.msr_modifiers[i].addr));
        out.append("\",\"bitmap\":\"").append(bitmap_text(t.msr_modifiers[i].bitmap, 64));
        out.append("\"}");
    }
    return out.append("]}");
}

Result<CpuTemplate> parse_cpu_config(std::string_view text) {
    auto o = parse_object(text);
    EMBER_TRY(o);
    Fields f(*o, "");
    for (const char* arm_only : {"reg_modifiers", "vcpu_features"}) {
        auto present = f.present(arm_only);
        EMBER_TRY(present);
        if (*present)
            return fail(std::string(arm_only) + ": only for aarch64; this host is x86_64");
    }
    CpuTemplate t;
    auto caps = capabilities(f);
    EMBER_TRY(caps);
    auto cpuid =
        objects<CpuidLeafModifier>(f, "cpuid_modifiers", kMaxCpuidModifiers, leaf_modifier);
    EMBER_TRY(cpuid);
    auto msrs = objects<MsrModifier>(f, "msr_modifiers", kMaxMsrModifiers, msr_modifier);
    EMBER_TRY(msrs);
    EMBER_TRY(f.finish());
    t.kvm_capabilities = std::move(*caps);
    t.cpuid_modifiers = std::move(*cpuid);
    t.msr_modifiers = std::move(*msrs);
    return t;
}

}  // namespace ember::json
