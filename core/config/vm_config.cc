#include "core/config/vm_config.h"

#include <cctype>
#include <set>
#include <string_view>

#include "core/base/log.h"

namespace ember {

bool is_valid_id(const std::string& id) {
    if (id.empty() || id.size() > 64) return false;
    for (unsigned char c : id)
        if (!std::isalnum(c) && c != '_') return false;
    return true;
}

namespace {

// A value that failed its check, as an error quotes it: its first 64 bytes, escaped. It may have
// come from a state file or a body of megabytes, and the error goes into a log and a terminal.
constexpr size_t kShown = 64;
std::string quoted(std::string_view value) {
    // Appended: GCC 12 warns, wrongly, of an overlap in "'" + string.
    std::string out(1, '\'');
    out.append(log::escape(value.substr(0, kShown)));
    if (value.size() <= kShown) return out += '\'';
    out.append("...' (").append(std::to_string(value.size())).append(" bytes)");
    return out;
}

// "drives.drive_id: 'x y' must be 1-64 characters of A-Z, a-z, 0-9 or _".
Result<void> check_id(std::string_view field, const std::string& id) {
    if (is_valid_id(id)) return {};
    return fail(std::string(field) + ": " + quoted(id) +
                " must be 1-64 characters of A-Z, a-z, 0-9 or _");
}

}  // namespace

bool is_valid_instance_id(const std::string& id) {
    if (id.empty() || id.size() > 64) return false;
    for (unsigned char c : id)
        if (!std::isalnum(c) && c != '-') return false;
    return true;
}

bool is_valid_mac(const std::string& mac) {
    if (mac.size() != 17) return false;
    for (size_t i = 0; i < mac.size(); ++i) {
        if (i % 3 == 2) {
            if (mac[i] != ':') return false;
        } else if (!std::isxdigit(static_cast<unsigned char>(mac[i]))) {
            return false;
        }
    }
    return true;
}

namespace {

// What Linux's root=PARTUUID= takes: an MBR "SSSSSSSS-PP" or a GPT UUID, optionally followed by
// "/PARTNROFF=N".
bool is_valid_partuuid(const std::string& p) {
    const size_t slash = p.find('/');
    const std::string uuid = p.substr(0, slash);
    if (uuid.empty() || uuid.size() > 36) return false;
    for (unsigned char c : uuid)
        if (!std::isxdigit(c) && c != '-') return false;
    if (slash == std::string::npos) return true;
    const std::string offset = p.substr(slash + 1);
    constexpr std::string_view kOffset = "PARTNROFF=";
    if (offset.size() <= kOffset.size() || offset.size() > kOffset.size() + 4 ||
        offset.compare(0, kOffset.size(), kOffset) != 0)
        return false;
    for (size_t i = kOffset.size(); i < offset.size(); ++i)
        if (!std::isdigit(static_cast<unsigned char>(offset[i]))) return false;
    return true;
}

bool is_multicast_mac(const std::string& mac) {
    return (std::stoi(mac.substr(0, 2), nullptr, 16) & 1) != 0;
}

Result<void> validate_bucket(const TokenBucketConfig& b, const std::string& where) {
    if (b.size == 0 && b.refill_time != 0)
        return fail(where + ".size: must be non-zero when refill_time is set");
    if (b.size != 0 && b.refill_time == 0)
        return fail(where + ".refill_time: must be non-zero when size is set");
    return {};
}

Result<void> validate_rate_limiter(const std::optional<RateLimiterConfig>& rl,
                                   const std::string& where) {
    if (!rl) return {};
    if (rl->bandwidth) EMBER_TRY(validate_bucket(*rl->bandwidth, where + ".bandwidth"));
    if (rl->ops) EMBER_TRY(validate_bucket(*rl->ops, where + ".ops"));
    return {};
}

}  // namespace

Result<void> validate_machine(const MachineConfig& m) {
    // Firecracker's texts first, then which field and why.
    const std::string vcpus =
        "The number of vCPUs must be greater than 0, less than " + std::to_string(kMaxVcpuCount) +
        " and must be 1 or an even number if SMT is enabled. machine-config.vcpu_count: ";
    if (m.vcpu_count < 1 || m.vcpu_count > kMaxVcpuCount)
        return fail(vcpus + "must be between 1 and " + std::to_string(kMaxVcpuCount) + ", got " +
                    std::to_string(m.vcpu_count));
    if (m.smt && m.vcpu_count > 1 && m.vcpu_count % 2 != 0)
        return fail(vcpus + "must be 1 or even when smt is true, got " +
                    std::to_string(m.vcpu_count));
    if (m.mem_size_mib < 1 || m.mem_size_mib > kMaxMemSizeMib)
        return fail(
            "The memory size (MiB) is either 0, or not a multiple of the configured page size. "
            "machine-config.mem_size_mib: must be between 1 and " +
            std::to_string(kMaxMemSizeMib) + ", got " + std::to_string(m.mem_size_mib));
    if (m.cpu_template && *m.cpu_template != "None")
        return fail("machine-config.cpu_template: " + quoted(*m.cpu_template) +
                    " is not supported by ember, which ships none of Firecracker's static "
                    "templates (deprecated there since v1.5): give the guest's CPU a custom "
                    "template with PUT /cpu-config (the config file's \"cpu-config\"), or a "
                    "fleet's template made by ember-cpu; only \"None\" is accepted here");
    if (m.huge_pages == HugePages::Size2M && m.mem_size_mib % 2 != 0)
        return fail(
            "The memory size (MiB) is either 0, or not a multiple of the configured page size. "
            "machine-config.mem_size_mib: must be a multiple of 2 with huge_pages \"2M\", got " +
            std::to_string(m.mem_size_mib));
    return {};
}

Result<void> validate_drive(const DriveConfig& d) {
    EMBER_TRY(check_id("drives.drive_id", d.drive_id));
    const std::string where = "drive '" + d.drive_id + "'";
    if (d.path_on_host.empty()) return fail(where + ": path_on_host: must not be empty");
    if (d.partuuid && !d.is_root_device)
        return fail(where + ": partuuid: only the root device may name a partition");
    // It goes onto the kernel command line as root=PARTUUID=...: a space or anything else there
    // would add kernel parameters of the caller's choosing.
    if (d.partuuid && !is_valid_partuuid(*d.partuuid))
        return fail(where + ": partuuid: " + quoted(*d.partuuid) +
                    " is not a partition UUID (hex digits and '-', like 0eaa91a0-01 or "
                    "a GPT UUID, optionally /PARTNROFF=N)");
    return validate_rate_limiter(d.rate_limiter, where + ": rate_limiter");
}

Result<void> validate_network_interface(const NetworkInterfaceConfig& n) {
    EMBER_TRY(check_id("network-interfaces.iface_id", n.iface_id));
    const std::string where = "network interface '" + n.iface_id + "'";
    if (n.host_dev_name.empty() || n.host_dev_name.size() > 15)
        return fail(where + ": host_dev_name: must be 1-15 characters (a Linux interface name)");
    if (n.guest_mac && !is_valid_mac(*n.guest_mac))
        return fail(where + ": guest_mac: " + quoted(*n.guest_mac) +
                    " is not a MAC address like 06:00:ac:10:00:02");
    // Firecracker takes these (its own API tests use 07:00:00:00:00:01); Linux's virtio-net then
    // gives the interface a random address instead.
    EMBER_TRY(validate_rate_limiter(n.rx_rate_limiter, where + ": rx_rate_limiter"));
    return validate_rate_limiter(n.tx_rate_limiter, where + ": tx_rate_limiter");
}

std::optional<std::string> guest_mac_warning(const NetworkInterfaceConfig& n) {
    if (!n.guest_mac || !is_multicast_mac(*n.guest_mac)) return std::nullopt;
    return "network interface '" + n.iface_id + "': guest_mac " + *n.guest_mac +
           " is a multicast address; the guest will likely choose a random one instead";
}

Result<void> validate_drive_update(const DriveUpdate& u) {
    EMBER_TRY(check_id("drives.drive_id", u.drive_id));
    const std::string where = "drive '" + u.drive_id + "'";
    if (u.path_on_host && u.path_on_host->empty())
        return fail(where + ": path_on_host: must not be empty");
    return validate_rate_limiter(u.rate_limiter, where + ": rate_limiter");
}

Result<void> validate_network_interface_update(const NetworkInterfaceUpdate& u) {
    EMBER_TRY(check_id("network-interfaces.iface_id", u.iface_id));
    const std::string where = "network interface '" + u.iface_id + "'";
    EMBER_TRY(validate_rate_limiter(u.rx_rate_limiter, where + ": rx_rate_limiter"));
    return validate_rate_limiter(u.tx_rate_limiter, where + ": tx_rate_limiter");
}

RateLimiterConfig updated_rate_limiter(const std::optional<RateLimiterConfig>& old,
                                       const RateLimiterConfig& update) {
    RateLimiterConfig out = old.value_or(RateLimiterConfig{});
    if (update.bandwidth) out.bandwidth = *update.bandwidth;
    if (update.ops) out.ops = *update.ops;
    return out;
}

std::string_view name_of(CacheType type) {
    return type == CacheType::Writeback ? "Writeback" : "Unsafe";
}

std::string_view name_of(IoEngineType engine) {
    return engine == IoEngineType::Sync ? "Sync" : "Async";
}

std::string_view name_of(HugePages pages) {
    return pages == HugePages::Size2M ? "2M" : "None";
}

uint64_t page_size_of(HugePages pages) {
    return pages == HugePages::Size2M ? kHugePageSize : 4096;
}

Result<CacheType> cache_type_named(std::string_view name, const std::string& key) {
    if (name == "Unsafe") return CacheType::Unsafe;
    if (name == "Writeback") return CacheType::Writeback;
    return std::unexpected(unknown_variant(key, std::string(name), {"Unsafe", "Writeback"}));
}

Result<IoEngineType> io_engine_named(std::string_view name, const std::string& key) {
    if (name == "Sync") return IoEngineType::Sync;
    if (name == "Async") return IoEngineType::Async;
    return std::unexpected(unknown_variant(key, std::string(name), {"Sync", "Async"}));
}

Result<HugePages> huge_pages_named(std::string_view name, const std::string& key) {
    if (name == "None") return HugePages::None;
    if (name == "2M") return HugePages::Size2M;
    return std::unexpected(unknown_variant(key, std::string(name), {"None", "2M"}));
}

Error unknown_variant(const std::string& key, const std::string& value,
                      std::initializer_list<const char*> allowed) {
    const bool two = allowed.size() == 2;
    std::string list;
    for (const char* a : allowed)
        list += std::string(list.empty() ? "" : two ? " or " : ", ") + "`" + a + "`";
    std::string shown = log::escape(std::string_view(value).substr(0, kShown));
    if (value.size() > kShown) shown += "...";
    return Error{key + ": unknown variant `" + shown + "`, expected " + (two ? "" : "one of ") +
                 list};
}

Result<void> validate_boot_source(const BootSourceConfig& b) {
    if (b.kernel_image_path.empty())
        return fail("boot-source.kernel_image_path: must not be empty");
    if (b.boot_args && b.boot_args->size() > kMaxBootArgsSize)
        return fail("The kernel command line is invalid: boot-source.boot_args: " +
                    std::to_string(b.boot_args->size()) + " bytes, more than the " +
                    std::to_string(kMaxBootArgsSize) + " a kernel command line holds");
    return {};
}

Result<void> validate(const VmConfig& config) {
    if (config.boot_source) EMBER_TRY(validate_boot_source(*config.boot_source));
    EMBER_TRY(validate_machine(config.machine));
    std::set<std::string> ids;
    int roots = 0;
    for (const auto& d : config.drives) {
        EMBER_TRY(validate_drive(d));
        if (!ids.insert(d.drive_id).second)
            return fail("drives: drive_id '" + d.drive_id + "' appears twice");
        roots += d.is_root_device ? 1 : 0;
    }
    if (roots > 1)
        return fail(
            "A root block device already exists! drives: more than one drive has "
            "is_root_device set");
    ids.clear();
    std::set<std::string> taps, macs;
    for (const auto& n : config.network_interfaces) {
        EMBER_TRY(validate_network_interface(n));
        if (!ids.insert(n.iface_id).second)
            return fail("network-interfaces: iface_id '" + n.iface_id + "' appears twice");
        if (!taps.insert(n.host_dev_name).second)
            return fail("Could not create the network device: network-interfaces: host_dev_name '" +
                        n.host_dev_name + "' is used twice");
        if (n.guest_mac && !macs.insert(*n.guest_mac).second)
            return fail("The MAC address is already in use: " + *n.guest_mac +
                        " (network-interfaces: guest_mac used twice)");
    }
    return {};
}

}  // namespace ember
