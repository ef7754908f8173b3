// core/config: the one description of each configuration struct's fields, which every codec walks:
// JSON in (api/json/config_codec.h), JSON out (api/json/writer.cc), and the state file's config
// section (snapshot/config_section.cc). A field added here is read from JSON and written to it.
//
// Fields are listed in Firecracker's JSON order, which GET /vm/config keeps; JSON in checks them in
// that order too, so it also decides which of two errors in one body is reported. `state` is the
// field's place in the state file's config section, whose order the files ember has written fix; a
// field without one is not kept in snapshots. Giving a field a place changes the section's layout:
// raise the section's version (core/base/state_sections.h) and give the field that version as its
// `since`; a section written before it lacks the field, which then reads as its default. Places
// run from 0 with no gap or repeat (config_codecs_test checks it).
#pragma once

#include <algorithm>
#include <concepts>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "core/base/described.h"
#include "core/base/hex.h"
#include "core/base/log.h"
#include "core/config/cpu_template.h"
#include "core/config/machine_config_patch.h"
#include "core/config/vm_config.h"

namespace ember::config {

inline constexpr int kNotInState = -1;

// A leaf that Firecracker's CPU templates write as a string where the member's type alone does not
// say how: a "0x" (or "0b") number, or a bitmap of 32 or 64 bits (cpu_template.h).
enum class Text : uint8_t { Plain, TemplateInteger, Bitmap32, Bitmap64 };

struct Field {
    const char* name;  // Firecracker's JSON name, and the name messages give
    int state = kNotInState;
    bool required = false;             // JSON in: "missing field" when absent
    bool omit_when_absent = false;     // JSON out: an absent value is left out rather than null
    bool default_when_absent = false;  // JSON out: an absent struct is written as its default
    uint32_t since = 1;                // the config section's version that first held it
    size_t max = 0;                    // JSON in: a list's most entries (0: the body's bound only)
    Text text = Text::Plain;
};

// A field ember refuses when given (anything but null), and writes as null.
struct Refused {
    const char* name;
    const char* why;
};

// Each describe() calls v(Field, member) for every field, and v(Refused) for each refused one.
void describe(Is<TokenBucketConfig> auto& b, auto&& v) {
    v(Field{.name = "size", .state = 0, .required = true}, b.size);
    v(Field{.name = "one_time_burst", .state = 1}, b.one_time_burst);
    v(Field{.name = "refill_time", .state = 2, .required = true}, b.refill_time);
}

void describe(Is<RateLimiterConfig> auto& r, auto&& v) {
    v(Field{.name = "bandwidth", .state = 0}, r.bandwidth);
    v(Field{.name = "ops", .state = 1}, r.ops);
}

void describe(Is<BootSourceConfig> auto& b, auto&& v) {
    v(Field{.name = "kernel_image_path", .state = 0, .required = true}, b.kernel_image_path);
    v(Field{.name = "initrd_path", .state = 1}, b.initrd_path);
    v(Field{.name = "boot_args", .state = 2}, b.boot_args);
}

void describe(Is<MachineConfig> auto& m, auto&& v) {
    v(Field{.name = "vcpu_count", .state = 0, .required = true}, m.vcpu_count);
    v(Field{.name = "mem_size_mib", .state = 1, .required = true}, m.mem_size_mib);
    v(Field{.name = "smt", .state = 2}, m.smt);
    v(Field{.name = "track_dirty_pages", .state = 3}, m.track_dirty_pages);
    // Not in the config section: the memory layout section keeps the page size, and a restore
    // sets huge_pages from it.
    v(Field{.name = "huge_pages"}, m.huge_pages);
    // validate() accepts only its default ("None"), so a snapshot does not keep it: an explicit
    // cpu_template "None" is served by GET /vm/config before a snapshot, and not after a restore.
    v(Field{.name = "cpu_template", .omit_when_absent = true}, m.cpu_template);
}

void describe(Is<DriveConfig> auto& d, auto&& v) {
    v(Field{.name = "drive_id", .state = 0, .required = true}, d.drive_id);
    v(Field{.name = "partuuid", .state = 4}, d.partuuid);
    v(Field{.name = "is_root_device", .state = 2, .required = true}, d.is_root_device);
    v(Field{.name = "cache_type", .state = 5}, d.cache_type);
    v(Field{.name = "is_read_only", .state = 3}, d.is_read_only);
    v(Field{.name = "path_on_host", .state = 1, .required = true}, d.path_on_host);
    v(Field{.name = "rate_limiter", .state = 7}, d.rate_limiter);
    v(Field{.name = "io_engine", .state = 6}, d.io_engine);
    // Firecracker's vhost-user drives name a socket instead of a file; its exported configs carry
    // "socket": null for every other drive.
    v(Refused{"socket", "vhost-user block devices are not supported by ember"});
}

void describe(Is<NetworkInterfaceConfig> auto& n, auto&& v) {
    v(Field{.name = "iface_id", .state = 0, .required = true}, n.iface_id);
    v(Field{.name = "host_dev_name", .state = 1, .required = true}, n.host_dev_name);
    v(Field{.name = "guest_mac", .state = 2}, n.guest_mac);
    v(Field{.name = "rx_rate_limiter", .state = 3}, n.rx_rate_limiter);
    v(Field{.name = "tx_rate_limiter", .state = 4}, n.tx_rate_limiter);
    // An ember extension. Not kept in snapshots: a restored interface gets the default, as one
    // configured without it does.
    v(Field{.name = "io_engine"}, n.io_engine);
}

// The whole configuration, as Firecracker's config file and GET /vm/config write it. The sections
// ember does not implement are refused.
void describe(Is<VmConfig> auto& c, auto&& v) {
    constexpr const char* kUnsupported = "not supported by ember";
    // Firecracker writes this shape before a boot source is set.
    v(Field{.name = "boot-source", .state = 1, .default_when_absent = true}, c.boot_source);
    v(Field{.name = "cpu-config"}, c.cpu_config_file);
    v(Field{.name = "drives", .state = 2}, c.drives);
    v(Field{.name = "machine-config", .state = 0}, c.machine);
    v(Field{.name = "network-interfaces", .state = 3}, c.network_interfaces);
    for (const char* section : {"balloon", "vsock", "logger", "metrics", "mmds-config", "entropy"})
        v(Refused{section, kUnsupported});
}

// The bodies of the API's PATCH requests and of PUT /logger: every field optional but the id.
void describe(Is<MachineConfigPatch> auto& p, auto&& v) {
    v(Field{.name = "vcpu_count"}, p.vcpu_count);
    v(Field{.name = "mem_size_mib"}, p.mem_size_mib);
    v(Field{.name = "smt"}, p.smt);
    v(Field{.name = "track_dirty_pages"}, p.track_dirty_pages);
    v(Field{.name = "cpu_template"}, p.cpu_template);
    v(Field{.name = "huge_pages"}, p.huge_pages);
}

void describe(Is<DriveUpdate> auto& u, auto&& v) {
    v(Field{.name = "drive_id", .required = true}, u.drive_id);
    v(Field{.name = "path_on_host"}, u.path_on_host);
    v(Field{.name = "rate_limiter"}, u.rate_limiter);
}

void describe(Is<NetworkInterfaceUpdate> auto& u, auto&& v) {
    v(Field{.name = "iface_id", .required = true}, u.iface_id);
    v(Field{.name = "rx_rate_limiter"}, u.rx_rate_limiter);
    v(Field{.name = "tx_rate_limiter"}, u.tx_rate_limiter);
}

void describe(Is<NetworkOverride> auto& o, auto&& v) {
    v(Field{.name = "iface_id", .required = true}, o.iface_id);
    v(Field{.name = "host_dev_name", .required = true}, o.host_dev_name);
}

void describe(Is<LoggerConfig> auto& l, auto&& v) {
    v(Field{.name = "log_path"}, l.log_path);
    v(Field{.name = "level"}, l.level);
    v(Field{.name = "show_level"}, l.show_level);
    v(Field{.name = "show_log_origin"}, l.show_log_origin);
    v(Field{.name = "module"}, l.module);
}

// A custom CPU template (PUT /cpu-config), in Firecracker's x86_64 language.
void describe(Is<CpuidRegisterModifier> auto& m, auto&& v) {
    v(Field{.name = "register", .required = true}, m.reg);
    v(Field{.name = "bitmap", .required = true, .text = Text::Bitmap32}, m.bitmap);
}

void describe(Is<CpuidLeafModifier> auto& m, auto&& v) {
    v(Field{.name = "leaf", .required = true, .text = Text::TemplateInteger}, m.leaf);
    v(Field{.name = "subleaf", .required = true, .text = Text::TemplateInteger}, m.subleaf);
    v(Field{.name = "flags", .required = true}, m.flags);
    // Required, as in Firecracker.
    v(Field{.name = "modifiers", .required = true, .max = kMaxRegisterModifiers}, m.modifiers);
}

void describe(Is<MsrModifier> auto& m, auto&& v) {
    v(Field{.name = "addr", .required = true, .text = Text::TemplateInteger}, m.addr);
    v(Field{.name = "bitmap", .required = true, .text = Text::Bitmap64}, m.bitmap);
}

void describe(Is<CpuTemplate> auto& t, auto&& v) {
    constexpr const char* kArmOnly = "only for aarch64; this host is x86_64";
    v(Refused{"reg_modifiers", kArmOnly});
    v(Refused{"vcpu_features", kArmOnly});
    v(Field{.name = "kvm_capabilities", .max = kMaxKvmCapabilities}, t.kvm_capabilities);
    v(Field{.name = "cpuid_modifiers", .max = kMaxCpuidModifiers}, t.cpuid_modifiers);
    v(Field{.name = "msr_modifiers", .max = kMaxMsrModifiers}, t.msr_modifiers);
}

// A visitor made of lambdas: describe(s, Overloaded{[](const Field&, auto& m) {...},
// [](const Refused&) {...}}).
template <typename... F>
struct Overloaded : F... {
    using F::operator()...;
};

struct AnyVisitor {
    template <typename... A>
    void operator()(A&&...) const {}
};

// Whether a PATCH body gives any field at all.
template <typename Patch>
bool gives_any(const Patch& patch) {
    bool any = false;
    describe(patch, Overloaded{[&](const Field&, const auto& given) { any |= given.has_value(); },
                               [](const Refused&) {}});
    return any;
}

// `whole` with what a PATCH body gives: each field given replaces the field of that name.
template <typename Patch, typename Whole>
Whole patched(Whole whole, const Patch& patch) {
    auto refused = [](const Refused&) {};
    auto replace_named = [&](const Field& p, const auto& given) {
        if (!given) return;
        auto replace = [&](const Field& w, auto& member) {
            if constexpr (std::is_assignable_v<decltype(member), decltype(*given)>)
                if (std::string_view(p.name) == w.name) member = *given;
        };
        describe(whole, Overloaded{replace, refused});
    };
    describe(patch, Overloaded{replace_named, refused});
    return whole;
}

// An enumeration from Firecracker's name for it, for any codec; unknown_variant() under `key`.
inline Result<void> from_name(std::string_view name, const std::string& key, CacheType& out) {
    return assign(cache_type_named(name, key), out);
}
inline Result<void> from_name(std::string_view name, const std::string& key, IoEngineType& out) {
    return assign(io_engine_named(name, key), out);
}
inline Result<void> from_name(std::string_view name, const std::string& key, HugePages& out) {
    return assign(huge_pages_named(name, key), out);
}
// Any case, and Firecracker's aliases ("Warn", "Trace").
inline Result<void> from_name(std::string_view name, const std::string& key, log::Level& out) {
    auto level = log::parse_level(name);
    if (!level) return fail(key + ": " + level.error().message);
    out = *level;
    return {};
}

// "eax", as Firecracker's templates name the registers.
inline Result<void> from_name(std::string_view name, const std::string& key, CpuidRegister& out) {
    for (auto reg :
         {CpuidRegister::Eax, CpuidRegister::Ebx, CpuidRegister::Ecx, CpuidRegister::Edx})
        if (name == name_of(reg)) {
            out = reg;
            return {};
        }
    return fail(key + ": unknown variant, expected one of `eax`, `ebx`, `ecx`, `edx`");
}
// "121", or "!121" to take it off the checks.
inline Result<void> from_name(std::string_view name, const std::string& key,
                              KvmCapabilityModifier& out) {
    out.removed = name.starts_with("!");
    if (out.removed) name.remove_prefix(1);
    auto number = parse_decimal(name, std::numeric_limits<uint32_t>::max(), key);
    EMBER_TRY(number);
    out.capability = static_cast<uint32_t>(*number);
    return {};
}

// A value JSON holds as a string by its name: name_of() writes it, from_name() reads it (an
// enumeration's may be declared with its type, after this).
template <typename T>
concept Named = std::is_enum_v<T> || requires(std::string_view s, const std::string& k, T& out) {
    { from_name(s, k, out) } -> std::same_as<Result<void>>;
};

// A leaf a field's Text says how to write as a string.
inline Result<void> from_text(std::string_view text, Text how, const std::string& key,
                              uint32_t& out) {
    (void)how;  // only TemplateInteger is a uint32_t's
    auto n = parse_template_integer(text, std::numeric_limits<uint32_t>::max(), key);
    EMBER_TRY(n);
    out = static_cast<uint32_t>(*n);
    return {};
}
constexpr unsigned bitmap_bits(Text how) {
    return how == Text::Bitmap64 ? 64 : 32;
}
inline Result<void> from_text(std::string_view text, Text how, const std::string& key,
                              BitmapModifier& out) {
    return assign(parse_bitmap(text, bitmap_bits(how), key), out);
}
inline std::string to_text(uint32_t v, Text) {
    return hex32(v);
}
inline std::string to_text(const BitmapModifier& b, Text how) {
    return bitmap_text(b, bitmap_bits(how));
}

template <typename T>
concept Textual = requires(std::string_view s, const std::string& k, T& out) {
    { from_text(s, Text::Plain, k, out) } -> std::same_as<Result<void>>;
};

// Whether a member of type T in `field` is JSON's as the string its Text describes: always for a
// leaf that is only text (a bitmap), and for a number when its field says so.
template <typename T>
constexpr bool as_text(const Field& field) {
    if constexpr (!Textual<T>)
        return false;
    else
        return !std::is_arithmetic_v<T> || field.text != Text::Plain;
}

// What the codecs tell apart besides a struct with a describe() (core/base/described.h).
template <typename T>
using IsVector = IsList<T>;
using ember::IsOptional;
// What an optional holds, or the type itself.
template <typename T>
struct ValueOfT {
    using type = T;
};
template <typename T>
struct ValueOfT<std::optional<T>> {
    using type = T;
};
template <typename T>
using ValueOf = typename ValueOfT<T>::type;

// A struct with a describe(): the codecs recurse into it.
template <typename T>
concept Described = requires(T& t) { describe(t, AnyVisitor{}); };

// The fields of `s` in the state file's order: v(Field, member) for each field with a place there.
template <typename S, typename V>
void describe_in_state_order(S& s, V&& v) {
    int places = 0;
    describe(s, Overloaded{[&](const Field& f, auto&) { places = std::max(places, f.state + 1); },
                           [](const Refused&) {}});
    for (int place = 0; place < places; ++place)
        describe(s, Overloaded{[&](const Field& f, auto& member) {
                                   if (f.state == place) v(f, member);
                               },
                               [](const Refused&) {}});
}

}  // namespace ember::config
