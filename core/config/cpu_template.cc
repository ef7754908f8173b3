#include "core/config/cpu_template.h"

#include <charconv>
#include <cstdio>
#include <memory>

namespace ember {

namespace {

// Up to 40 bytes of what the user sent, for a message: printable ASCII as it is, any other byte
// as \xNN, so that a fault_message is always valid UTF-8 whatever came in.
std::string shown(std::string_view text) {
    std::string out;
    for (char c : text.substr(0, 40)) {
        if (c >= 0x20 && c <= 0x7e) {
            out += c;
        } else {
            char escaped[8];
            std::snprintf(escaped, sizeof escaped, "\\x%02x", static_cast<unsigned char>(c));
            out += escaped;
        }
    }
    return text.size() > 40 ? out + "..." : out;
}

}  // namespace

Result<BitmapModifier> parse_bitmap(std::string_view text, unsigned bits,
                                    const std::string& where) {
    const auto bad = [&](const std::string& why) {
        return fail(where + ": " + why + " (a bitmap is at most " + std::to_string(bits) +
                    " of 0, 1 and x, after an optional 0b, as in \"0bxxxx0001\")");
    };
    if (text.starts_with("0b")) text.remove_prefix(2);
    BitmapModifier m;
    unsigned count = 0;
    for (auto it = text.rbegin(); it != text.rend(); ++it) {
        const char c = *it;
        if (c == '_') continue;
        if (c != '0' && c != '1' && c != 'x') {
            std::string why = "'";
            why.append(shown(std::string_view(&c, 1))).append("' is not 0, 1 or x");
            return bad(why);
        }
        if (count == bits) return bad("more than " + std::to_string(bits) + " bits");
        const uint64_t bit = uint64_t{1} << count++;
        if (c == 'x') continue;
        m.mask |= bit;
        if (c == '1') m.value |= bit;
    }
    return m;
}

Result<uint64_t> parse_template_integer(std::string_view text, uint64_t max,
                                        const std::string& where) {
    int base = 0;
    std::string_view digits = text;
    if (text.starts_with("0x")) {
        base = 16;
        digits.remove_prefix(2);
    } else if (text.starts_with("0b")) {
        base = 2;
        digits.remove_prefix(2);
    }
    uint64_t v = 0;
    const char* const first = std::to_address(digits.begin());
    const char* const last = std::to_address(digits.end());
    const auto [end, ec] = base ? std::from_chars(first, last, v, base)
                                : std::from_chars_result{nullptr, std::errc::invalid_argument};
    if (digits.empty() || ec != std::errc() || end != last || v > max) {
        std::string why = where;
        why.append(": \"").append(shown(text)).append("\" is not a 0x (or 0b) number of at most ");
        return fail(why + std::to_string(max));
    }
    return v;
}

Result<uint64_t> parse_decimal(std::string_view text, uint64_t max, const std::string& where) {
    uint64_t v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() || v > max) {
        std::string why = where;
        why.append(": \"").append(shown(text)).append("\" is not a decimal number of at most ");
        return fail(why + std::to_string(max));
    }
    return v;
}

std::string_view name_of(CpuidRegister reg) {
    switch (reg) {
        case CpuidRegister::Eax: return "eax";
        case CpuidRegister::Ebx: return "ebx";
        case CpuidRegister::Ecx: return "ecx";
        case CpuidRegister::Edx: return "edx";
    }
    return "?";
}

// Appends only: GCC 12 warns (-Wrestrict, wrongly) on "literal" + std::string here.
std::string name_of(const KvmCapabilityModifier& c) {
    std::string out = c.removed ? "!" : "";
    return out.append(std::to_string(c.capability));
}

std::string bitmap_text(const BitmapModifier& b, unsigned bits) {
    std::string out = "0b";
    for (unsigned i = bits; i-- > 0;) {
        const uint64_t bit = uint64_t{1} << i;
        out += !(b.mask & bit) ? 'x' : (b.value & bit) ? '1' : '0';
    }
    return out;
}

}  // namespace ember
