#include "api/json/vm_config_json.h"

#include "api/json/fields.h"
#include "api/json/rate_limiter_json.h"

namespace ember::json {
namespace {

using simdjson::dom::object;

// Moves a required field into `out`; an error naming the field when it is absent.
template <typename T, typename U>
Result<void> need(const Fields& f, Result<std::optional<T>> value, const char* key, U& out) {
    auto v = f.required(std::move(value), key);
    if (!v) return std::unexpected(v.error());
    out = std::move(*v);
    return {};
}

Result<BootSourceConfig> boot_source_from(object o, const std::string& path) {
    Fields f(o, path);
    BootSourceConfig b;
    EMBER_TRY(need(f, f.string("kernel_image_path"), "kernel_image_path", b.kernel_image_path));
    EMBER_TRY(take(f.string("initrd_path"), b.initrd_path));
    EMBER_TRY(take(f.string("boot_args"), b.boot_args));
    EMBER_TRY(f.finish());
    return b;
}

Result<MachineConfig> machine_from(object o, const std::string& path) {
    Fields f(o, path);
    MachineConfig m;
    EMBER_TRY(need(f, f.u32("vcpu_count"), "vcpu_count", m.vcpu_count));
    EMBER_TRY(need(f, f.u32("mem_size_mib"), "mem_size_mib", m.mem_size_mib));
    EMBER_TRY(take(f.boolean("smt"), m.smt));
    EMBER_TRY(take(f.boolean("track_dirty_pages"), m.track_dirty_pages));
    EMBER_TRY(take(f.string("cpu_template"), m.cpu_template));
    EMBER_TRY(take(f.string("huge_pages"), m.huge_pages));
    EMBER_TRY(f.finish());
    return m;
}

Result<DriveConfig> drive_from(object o, const std::string& path) {
    Fields f(o, path);
    DriveConfig d;
    EMBER_TRY(need(f, f.string("drive_id"), "drive_id", d.drive_id));
    // Firecracker's vhost-user drives name a socket instead of a file; its exported configs carry
    // "socket": null for every other drive.
    auto socket = f.string("socket");
    if (!socket) return std::unexpected(socket.error());
    if (*socket)
        return fail(f.path_of("socket") + ": vhost-user block devices are not supported by ember");
    EMBER_TRY(need(f, f.string("path_on_host"), "path_on_host", d.path_on_host));
    EMBER_TRY(need(f, f.boolean("is_root_device"), "is_root_device", d.is_root_device));
    EMBER_TRY(take(f.boolean("is_read_only"), d.is_read_only));
    EMBER_TRY(take(f.string("partuuid"), d.partuuid));
    std::optional<std::string> cache_type, io_engine;
    EMBER_TRY(take(f.string("cache_type"), cache_type));
    EMBER_TRY(take(f.string("io_engine"), io_engine));
    if (cache_type)
        EMBER_TRY(assign(cache_type_named(*cache_type, f.path_of("cache_type")), d.cache_type));
    if (io_engine)
        EMBER_TRY(assign(io_engine_named(*io_engine, f.path_of("io_engine")), d.io_engine));
    EMBER_TRY(take(rate_limiter_from(f, "rate_limiter"), d.rate_limiter));
    EMBER_TRY(f.finish());
    return d;
}

Result<NetworkInterfaceConfig> network_interface_from(object o, const std::string& path) {
    Fields f(o, path);
    NetworkInterfaceConfig n;
    EMBER_TRY(need(f, f.string("iface_id"), "iface_id", n.iface_id));
    EMBER_TRY(need(f, f.string("host_dev_name"), "host_dev_name", n.host_dev_name));
    EMBER_TRY(take(f.string("guest_mac"), n.guest_mac));
    EMBER_TRY(take(rate_limiter_from(f, "rx_rate_limiter"), n.rx_rate_limiter));
    EMBER_TRY(take(rate_limiter_from(f, "tx_rate_limiter"), n.tx_rate_limiter));
    EMBER_TRY(f.finish());
    return n;
}

// Parses a body that must be one JSON object and hands it to `from`, which copies what it needs
// out of the parser.
template <typename T>
Result<T> parse_with(std::string_view text, Result<T> (*from)(object, const std::string&)) {
    auto o = parse_object(text);
    if (!o) return std::unexpected(o.error());
    return from(*o, "");
}

// Sections of Firecracker's config file that ember does not implement.
constexpr const char* kUnsupportedSections[] = {"balloon",    "vsock",  "mmds-config", "entropy",
                                                "cpu-config", "logger", "metrics"};

Result<VmConfig> vm_config_from(object o, const std::string&) {
    Fields f(o, "");
    VmConfig config;
    auto boot = f.object("boot-source");
    if (!boot) return std::unexpected(boot.error());
    if (*boot) {
        auto b = boot_source_from(**boot, "boot-source");
        if (!b) return std::unexpected(b.error());
        config.boot_source = *b;
    }
    auto machine = f.object("machine-config");
    if (!machine) return std::unexpected(machine.error());
    if (*machine) {
        auto m = machine_from(**machine, "machine-config");
        if (!m) return std::unexpected(m.error());
        config.machine = *m;
    }
    auto drives = list_from<DriveConfig>(f, "drives", drive_from);
    if (!drives) return std::unexpected(drives.error());
    config.drives = std::move(*drives);
    auto ifaces =
        list_from<NetworkInterfaceConfig>(f, "network-interfaces", network_interface_from);
    if (!ifaces) return std::unexpected(ifaces.error());
    config.network_interfaces = std::move(*ifaces);
    for (const char* section : kUnsupportedSections) {
        auto present = f.present(section);
        if (!present) return std::unexpected(present.error());
        if (*present) return fail(std::string(section) + ": not supported by ember");
    }
    EMBER_TRY(f.finish());
    return config;
}

}  // namespace

Result<ValidVmConfig> parse_vm_config(std::string_view text) {
    auto parsed = parse_with<VmConfig>(text, vm_config_from);
    if (!parsed) return std::unexpected(parsed.error());
    auto config = ValidVmConfig::check(std::move(*parsed));
    if (!config) return config;
    // Checked last, so a document with a worse problem is told about that one first.
    if (!(*config)->boot_source) return fail("boot-source: missing field `boot-source`");
    return config;
}

Result<BootSourceConfig> parse_boot_source(std::string_view text) {
    return parse_with<BootSourceConfig>(text, boot_source_from);
}
Result<MachineConfig> parse_machine_config(std::string_view text) {
    return parse_with<MachineConfig>(text, machine_from);
}
Result<DriveConfig> parse_drive(std::string_view text) {
    return parse_with<DriveConfig>(text, drive_from);
}
Result<NetworkInterfaceConfig> parse_network_interface(std::string_view text) {
    return parse_with<NetworkInterfaceConfig>(text, network_interface_from);
}

}  // namespace ember::json
