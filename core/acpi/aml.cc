// Encodings from the ACPI specification, 6.5, chapter 20 ("ACPI Machine Language Specification")
// and section 6.4 (resource data types).
#include "core/acpi/aml.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace ember::acpi::aml {
namespace {

constexpr uint8_t kZeroOp = 0x00;
constexpr uint8_t kOneOp = 0x01;
constexpr uint8_t kNameOp = 0x08;
constexpr uint8_t kBytePrefix = 0x0a;
constexpr uint8_t kWordPrefix = 0x0b;
constexpr uint8_t kDWordPrefix = 0x0c;
constexpr uint8_t kStringPrefix = 0x0d;
constexpr uint8_t kQWordPrefix = 0x0e;
constexpr uint8_t kScopeOp = 0x10;
constexpr uint8_t kBufferOp = 0x11;
constexpr uint8_t kPackageOp = 0x12;
constexpr uint8_t kMethodOp = 0x14;
constexpr uint8_t kDualNamePrefix = 0x2e;
constexpr uint8_t kMultiNamePrefix = 0x2f;
constexpr uint8_t kExtOpPrefix = 0x5b;
constexpr uint8_t kDeviceOp = 0x82;  // after kExtOpPrefix
constexpr uint8_t kRootChar = 0x5c;
constexpr uint8_t kParentPrefixChar = 0x5e;
constexpr uint8_t kArg0Op = 0x68;
constexpr uint8_t kNotifyOp = 0x86;
constexpr uint8_t kLEqualOp = 0x93;
constexpr uint8_t kIfOp = 0xa0;
constexpr uint8_t kReturnOp = 0xa4;
constexpr uint8_t kOnesOp = 0xff;

constexpr uint8_t kIoDescriptor = 0x47;       // small item, 7 bytes
constexpr uint8_t kIrqDescriptor = 0x22;      // small item, 2 bytes
constexpr uint8_t kEndTag = 0x79;             // small item, 1 byte
constexpr uint8_t kMemory32Fixed = 0x86;      // large item
constexpr uint8_t kExtendedInterrupt = 0x89;  // large item

[[noreturn]] void bad_input(std::string_view what, std::string_view value) {
    std::fprintf(stderr, "ember: bug: AML %.*s '%.*s' is malformed\n",
                 static_cast<int>(what.size()), what.data(), static_cast<int>(value.size()),
                 value.data());
    std::abort();
}

// resize and memcpy rather than insert: GCC 12 warns falsely (-Warray-bounds) about inserting
// into the one-byte vectors that start most terms.
void append(Bytes& out, std::span<const uint8_t> more) {
    if (more.empty()) return;
    const size_t at = out.size();
    out.resize(at + more.size());
    std::memcpy(out.data() + at, more.data(), more.size());
}

template <typename T>
void put_le(Bytes& out, T value) {
    for (size_t i = 0; i < sizeof(T); ++i) out.push_back(static_cast<uint8_t>(value >> (8 * i)));
}

// PkgLength's own encoding of `value`: one byte up to 63, else a lead byte holding the low nibble
// and the count of the bytes that follow.
Bytes encode_length(size_t value) {
    if (value < 0x40) return {static_cast<uint8_t>(value)};
    Bytes out{static_cast<uint8_t>(value & 0x0f)};
    for (size_t rest = value >> 4; rest != 0; rest >>= 8) out.push_back(static_cast<uint8_t>(rest));
    if (out.size() > 4) bad_input("package length", std::to_string(value));
    out[0] |= static_cast<uint8_t>((out.size() - 1) << 6);
    return out;
}

// An opcode (one or two bytes), the PkgLength of what follows, then what follows.
Bytes with_length(std::initializer_list<uint8_t> opcode, const Bytes& content) {
    Bytes out(opcode);
    append(out, package_length(content.size()));
    append(out, content);
    return out;
}

void append_segment(Bytes& out, std::string_view segment, std::string_view path) {
    auto lead = [](char c) { return (c >= 'A' && c <= 'Z') || c == '_'; };
    auto digit = [](char c) { return c >= '0' && c <= '9'; };
    if (segment.empty() || segment.size() > 4 || !lead(segment[0])) bad_input("name", path);
    for (char c : segment)
        if (!lead(c) && !digit(c)) bad_input("name", path);
    for (size_t i = 0; i < 4; ++i)
        out.push_back(static_cast<uint8_t>(i < segment.size() ? segment[i] : '_'));
}

}  // namespace

Bytes joined(const std::vector<Bytes>& terms) {
    Bytes out;
    for (const auto& t : terms) append(out, t);
    return out;
}

Bytes package_length(size_t content_length) {
    // The encoding counts its own bytes, so try each size until the total fits it.
    for (size_t own = 1; own <= 4; ++own) {
        Bytes out = encode_length(content_length + own);
        if (out.size() == own) return out;
    }
    bad_input("package length", std::to_string(content_length));
}

Bytes integer(uint64_t value) {
    if (value == 0) return {kZeroOp};
    if (value == 1) return {kOneOp};
    if (value == ~uint64_t{0}) return {kOnesOp};
    Bytes out;
    if (value <= 0xff) {
        out.push_back(kBytePrefix);
        put_le(out, static_cast<uint8_t>(value));
    } else if (value <= 0xffff) {
        out.push_back(kWordPrefix);
        put_le(out, static_cast<uint16_t>(value));
    } else if (value <= 0xffffffff) {
        out.push_back(kDWordPrefix);
        put_le(out, static_cast<uint32_t>(value));
    } else {
        out.push_back(kQWordPrefix);
        put_le(out, value);
    }
    return out;
}

Bytes string(std::string_view ascii) {
    Bytes out{kStringPrefix};
    for (char c : ascii) {
        const auto byte = static_cast<uint8_t>(c);
        if (byte == 0 || byte > 0x7f) bad_input("string", ascii);
        out.push_back(byte);
    }
    out.push_back(0);
    return out;
}

Bytes eisa_id(std::string_view id) {
    auto upper = [](char c) { return c >= 'A' && c <= 'Z'; };
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    if (id.size() != 7) bad_input("EISA id", id);
    uint32_t vendor = 0;
    for (size_t i = 0; i < 3; ++i) {
        if (!upper(id[i])) bad_input("EISA id", id);
        vendor = (vendor << 5) | static_cast<uint32_t>(id[i] - 0x40);
    }
    uint32_t product = 0;
    for (size_t i = 3; i < 7; ++i) {
        int nibble = hex(id[i]);
        if (nibble < 0) bad_input("EISA id", id);
        product = (product << 4) | static_cast<uint32_t>(nibble);
    }
    // The compressed id is stored big-endian: vendor bytes first, then product bytes.
    return {kDWordPrefix, static_cast<uint8_t>(vendor >> 8), static_cast<uint8_t>(vendor),
            static_cast<uint8_t>(product >> 8), static_cast<uint8_t>(product)};
}

Bytes package(const std::vector<Bytes>& elements) {
    if (elements.size() > 0xff) bad_input("package", std::to_string(elements.size()));
    Bytes content{static_cast<uint8_t>(elements.size())};
    append(content, joined(elements));
    return with_length({kPackageOp}, content);
}

Bytes buffer(std::span<const uint8_t> bytes) {
    Bytes content = integer(bytes.size());
    append(content, bytes);
    return with_length({kBufferOp}, content);
}

Bytes name_string(std::string_view path) {
    Bytes out;
    const std::string_view whole = path;
    if (!path.empty() && path[0] == '\\') {
        out.push_back(kRootChar);
        path.remove_prefix(1);
    } else {
        while (!path.empty() && path[0] == '^') {
            out.push_back(kParentPrefixChar);
            path.remove_prefix(1);
        }
    }
    std::vector<std::string_view> segments;
    while (!path.empty()) {
        size_t dot = path.find('.');
        segments.push_back(path.substr(0, dot));
        path = dot == std::string_view::npos ? std::string_view{} : path.substr(dot + 1);
        if (dot != std::string_view::npos && path.empty()) bad_input("name", whole);
    }
    if (segments.size() > 0xff) bad_input("name", whole);
    if (segments.empty()) {
        out.push_back(0);  // NullName
    } else if (segments.size() == 2) {
        out.push_back(kDualNamePrefix);
    } else if (segments.size() > 2) {
        out.push_back(kMultiNamePrefix);
        out.push_back(static_cast<uint8_t>(segments.size()));
    }
    for (auto s : segments) append_segment(out, s, whole);
    return out;
}

Bytes name(std::string_view path, const Bytes& value) {
    Bytes out{kNameOp};
    append(out, name_string(path));
    append(out, value);
    return out;
}

Bytes scope(std::string_view path, const std::vector<Bytes>& terms) {
    Bytes content = name_string(path);
    append(content, joined(terms));
    return with_length({kScopeOp}, content);
}

Bytes device(std::string_view path, const std::vector<Bytes>& terms) {
    Bytes content = name_string(path);
    append(content, joined(terms));
    return with_length({kExtOpPrefix, kDeviceOp}, content);
}

Bytes method(std::string_view path, uint8_t arg_count, bool serialized,
             const std::vector<Bytes>& terms) {
    if (arg_count > 7) bad_input("method argument count", std::to_string(arg_count));
    Bytes content = name_string(path);
    content.push_back(static_cast<uint8_t>(arg_count | (serialized ? 0x08 : 0)));
    append(content, joined(terms));
    return with_length({kMethodOp}, content);
}

Bytes arg(unsigned n) {
    if (n > 6) bad_input("argument", std::to_string(n));
    return {static_cast<uint8_t>(kArg0Op + n)};
}

Bytes ret(const Bytes& value) {
    Bytes out{kReturnOp};
    append(out, value);
    return out;
}

Bytes equal(const Bytes& a, const Bytes& b) {
    Bytes out{kLEqualOp};
    append(out, a);
    append(out, b);
    return out;
}

Bytes if_then(const Bytes& predicate, const std::vector<Bytes>& terms) {
    Bytes content = predicate;
    append(content, joined(terms));
    return with_length({kIfOp}, content);
}

Bytes notify(std::string_view path, const Bytes& value) {
    Bytes out{kNotifyOp};
    append(out, name_string(path));
    append(out, value);
    return out;
}

Bytes io_port(uint16_t base, uint8_t length) {
    Bytes out{kIoDescriptor, 0x01};  // decodes 16 address lines
    put_le(out, base);               // minimum
    put_le(out, base);               // maximum: the range is fixed
    out.push_back(1);                // alignment
    out.push_back(length);
    return out;
}

Bytes irq(uint8_t line) {
    if (line > 15) bad_input("IRQ", std::to_string(line));
    Bytes out{kIrqDescriptor};
    put_le(out, static_cast<uint16_t>(1u << line));
    return out;
}

Bytes memory32_fixed(uint32_t base, uint32_t length, bool writable) {
    Bytes out{kMemory32Fixed};
    put_le(out, uint16_t{9});  // the length of what follows
    out.push_back(writable ? 1 : 0);
    put_le(out, base);
    put_le(out, length);
    return out;
}

Bytes interrupt(uint32_t gsi, bool edge, bool active_low, bool shared) {
    Bytes out{kExtendedInterrupt};
    put_le(out, uint16_t{6});  // flags, count, one interrupt number
    const uint8_t consumer = 0x01;
    out.push_back(static_cast<uint8_t>(consumer | (edge ? 0x02 : 0) | (active_low ? 0x04 : 0) |
                                       (shared ? 0x08 : 0)));
    out.push_back(1);
    put_le(out, gsi);
    return out;
}

Bytes resource_template(const std::vector<Bytes>& descriptors) {
    Bytes content = joined(descriptors);
    content.push_back(kEndTag);
    content.push_back(0);  // a zero checksum: "the template is correct"
    return buffer(content);
}

}  // namespace ember::acpi::aml
