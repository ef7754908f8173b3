// core/config: the one description of each configuration struct's fields, which every codec walks:
// JSON in (api/json/config_codec.h), JSON out (the same), and the state file's config section
// (snapshot/config_section.cc). A field added here is read, written and snapshotted everywhere.
//
// Fields are listed in Firecracker's JSON order, which GET /vm/config keeps. `state` is the field's
// place in the state file's config section, whose order the files ember has written fix; a field
// without one is not kept in snapshots.
#pragma once

#include <algorithm>
#include <concepts>
#include <optional>
#include <type_traits>
#include <vector>

#include "core/config/vm_config.h"

namespace ember::config {

inline constexpr int kNotInState = -1;

struct Field {
    const char* name;  // Firecracker's JSON name, and the name messages give
    int state = kNotInState;
    bool required = false;             // JSON in: "missing field" when absent
    bool omit_when_absent = false;     // JSON out: an absent value is left out rather than null
    bool default_when_absent = false;  // JSON out: an absent struct is written as its default
};

// A field ember refuses when given (anything but null), and writes as null.
struct Refused {
    const char* name;
    const char* why;
};

// Each describe() calls v(Field, member) for every field, and v(Refused) for each refused one.
template <typename S, typename V>
    requires std::same_as<std::remove_const_t<S>, TokenBucketConfig>
void describe(S& b, V&& v) {
    v(Field{"size", 0, true}, b.size);
    v(Field{"one_time_burst", 1}, b.one_time_burst);
    v(Field{"refill_time", 2, true}, b.refill_time);
}

template <typename S, typename V>
    requires std::same_as<std::remove_const_t<S>, RateLimiterConfig>
void describe(S& r, V&& v) {
    v(Field{"bandwidth", 0}, r.bandwidth);
    v(Field{"ops", 1}, r.ops);
}

template <typename S, typename V>
    requires std::same_as<std::remove_const_t<S>, BootSourceConfig>
void describe(S& b, V&& v) {
    v(Field{"kernel_image_path", 0, true}, b.kernel_image_path);
    v(Field{"initrd_path", 1}, b.initrd_path);
    v(Field{"boot_args", 2}, b.boot_args);
}

template <typename S, typename V>
    requires std::same_as<std::remove_const_t<S>, MachineConfig>
void describe(S& m, V&& v) {
    v(Field{"vcpu_count", 0, true}, m.vcpu_count);
    v(Field{"mem_size_mib", 1, true}, m.mem_size_mib);
    v(Field{"smt", 2}, m.smt);
    v(Field{"track_dirty_pages", 3}, m.track_dirty_pages);
    // Only their defaults are valid, so a snapshot has no need of them.
    v(Field{"huge_pages"}, m.huge_pages);
    v(Field{"cpu_template", kNotInState, false, true}, m.cpu_template);
}

template <typename S, typename V>
    requires std::same_as<std::remove_const_t<S>, DriveConfig>
void describe(S& d, V&& v) {
    v(Field{"drive_id", 0, true}, d.drive_id);
    v(Field{"partuuid", 4}, d.partuuid);
    v(Field{"is_root_device", 2, true}, d.is_root_device);
    v(Field{"cache_type", 5}, d.cache_type);
    v(Field{"is_read_only", 3}, d.is_read_only);
    v(Field{"path_on_host", 1, true}, d.path_on_host);
    v(Field{"rate_limiter", 7}, d.rate_limiter);
    v(Field{"io_engine", 6}, d.io_engine);
    // Firecracker's vhost-user drives name a socket instead of a file; its exported configs carry
    // "socket": null for every other drive.
    v(Refused{"socket", "vhost-user block devices are not supported by ember"});
}

template <typename S, typename V>
    requires std::same_as<std::remove_const_t<S>, NetworkInterfaceConfig>
void describe(S& n, V&& v) {
    v(Field{"iface_id", 0, true}, n.iface_id);
    v(Field{"host_dev_name", 1, true}, n.host_dev_name);
    v(Field{"guest_mac", 2}, n.guest_mac);
    v(Field{"rx_rate_limiter", 3}, n.rx_rate_limiter);
    v(Field{"tx_rate_limiter", 4}, n.tx_rate_limiter);
}

// The whole configuration, as Firecracker's config file and GET /vm/config write it. The sections
// ember does not implement are refused.
template <typename S, typename V>
    requires std::same_as<std::remove_const_t<S>, VmConfig>
void describe(S& c, V&& v) {
    constexpr const char* kUnsupported = "not supported by ember";
    // Firecracker writes this shape before a boot source is set.
    v(Field{"boot-source", 1, false, false, true}, c.boot_source);
    v(Refused{"cpu-config", kUnsupported});
    v(Field{"drives", 2}, c.drives);
    v(Field{"machine-config", 0}, c.machine);
    v(Field{"network-interfaces", 3}, c.network_interfaces);
    for (const char* section : {"balloon", "vsock", "logger", "metrics", "mmds-config", "entropy"})
        v(Refused{section, kUnsupported});
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

// What the codecs tell apart besides a struct with a describe().
template <typename T>
struct IsVector : std::false_type {};
template <typename T>
struct IsVector<std::vector<T>> : std::true_type {};
template <typename T>
struct IsOptional : std::false_type {};
template <typename T>
struct IsOptional<std::optional<T>> : std::true_type {};

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
