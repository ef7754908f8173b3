// core/config: what a VM is made of, as Firecracker's API and --config-file describe it, and the
// checks every path into it shares. The JSON parsers (api/json) fill these structs; validate()
// decides, once, where a configuration comes in, and hands out a ValidVmConfig. Field names follow
// Firecracker's so messages name what the user wrote.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/config/cpu_template.h"

namespace ember {

struct TokenBucketConfig {
    uint64_t size = 0;
    std::optional<uint64_t> one_time_burst;
    uint64_t refill_time = 0;  // ms
};

struct RateLimiterConfig {
    std::optional<TokenBucketConfig> bandwidth;
    std::optional<TokenBucketConfig> ops;
};

struct BootSourceConfig {
    std::string kernel_image_path;
    std::optional<std::string> initrd_path;
    std::optional<std::string> boot_args;
};

// The pages guest memory is made of: the host's base pages, or hugetlbfs's 2 MiB pages, taken from
// the host's pool (/proc/sys/vm/nr_hugepages) when the memory is mapped.
enum class HugePages : uint8_t { None, Size2M };
inline constexpr uint64_t kHugePageSize = 2 * 1024 * 1024;

struct MachineConfig {
    uint32_t vcpu_count = 1;
    uint32_t mem_size_mib = 128;
    bool smt = false;
    bool track_dirty_pages = false;
    std::optional<std::string> cpu_template;  // only "None" is supported
    HugePages huge_pages = HugePages::None;
};

// How the guest's writes reach the disk: Unsafe never flushes (no VIRTIO_BLK_F_FLUSH); Writeback
// offers flush and honours it.
enum class CacheType : uint8_t { Unsafe, Writeback };
// What serves a drive's requests or moves an interface's frames: io_uring, or a system call at a
// time on the VMM thread.
enum class IoEngineType : uint8_t { Async, Sync };

// Firecracker's names, as its API and config file write them.
std::string_view name_of(CacheType type);
std::string_view name_of(IoEngineType engine);
std::string_view name_of(HugePages pages);
// The value Firecracker's name stands for; otherwise unknown_variant() under `key`.
Result<CacheType> cache_type_named(std::string_view name, const std::string& key);
Result<IoEngineType> io_engine_named(std::string_view name, const std::string& key);
Result<HugePages> huge_pages_named(std::string_view name, const std::string& key);
// The size of the pages guest memory is mapped with: 4 KiB or 2 MiB.
uint64_t page_size_of(HugePages pages);

struct DriveConfig {
    std::string drive_id;
    std::string path_on_host;
    bool is_root_device = false;
    bool is_read_only = false;
    std::optional<std::string> partuuid;
    CacheType cache_type = CacheType::Unsafe;
    IoEngineType io_engine = IoEngineType::Async;
    std::optional<RateLimiterConfig> rate_limiter;
};

struct NetworkInterfaceConfig {
    std::string iface_id;
    std::string host_dev_name;
    std::optional<std::string> guest_mac;
    std::optional<RateLimiterConfig> rx_rate_limiter;
    std::optional<RateLimiterConfig> tx_rate_limiter;
    // How its frames cross to the tap: Async (io_uring, batched) or Sync (a system call each).
    IoEngineType io_engine = IoEngineType::Async;
};

// PATCH /drives/{id} after boot: a new backing file, new rate limits, or both.
struct DriveUpdate {
    std::string drive_id;
    std::optional<std::string> path_on_host;
    std::optional<RateLimiterConfig> rate_limiter;
};

// PATCH /network-interfaces/{id} after boot: new rate limits.
struct NetworkInterfaceUpdate {
    std::string iface_id;
    std::optional<RateLimiterConfig> rx_rate_limiter;
    std::optional<RateLimiterConfig> tx_rate_limiter;
};

// A rate limiter after an update, as Firecracker applies one: a bucket the update leaves out
// stays as it was, one it gives replaces it, and one given with size 0 turns that limit off.
RateLimiterConfig updated_rate_limiter(const std::optional<RateLimiterConfig>& old,
                                       const RateLimiterConfig& update);

// PUT /snapshot/load's network_overrides: the tap a restored interface uses instead of its own.
struct NetworkOverride {
    std::string iface_id;
    std::string host_dev_name;
    bool operator==(const NetworkOverride&) const = default;
};

struct VmConfig {
    std::optional<BootSourceConfig> boot_source;
    MachineConfig machine;
    std::vector<DriveConfig> drives;
    std::vector<NetworkInterfaceConfig> network_interfaces;
    // PUT /cpu-config's template. Not written by GET /vm/config, as Firecracker writes null there;
    // a snapshot keeps its effect (the CPUID and MSRs the guest was given), not the template.
    std::optional<CpuTemplate> cpu_config;
    // A config file's "cpu-config": the path of a template file, as Firecracker v1.7 takes it.
    // Only between reading the document and reading that file (json::parse_vm_config), which
    // leaves the template in cpu_config and this empty.
    std::optional<std::string> cpu_config_file;
};

// The kernel command line used when boot-source has no boot_args.
inline constexpr const char* kDefaultBootArgs =
    "console=ttyS0 reboot=k panic=1 nomodule i8042.noaux i8042.nomux i8042.nopnp";

inline constexpr uint32_t kMaxVcpuCount = 32;
// 1 TiB; the CPU's physical address width may lower it further (checked when the VM is built).
inline constexpr uint32_t kMaxMemSizeMib = 1024 * 1024;

// Firecracker's limit (its CMDLINE_MAX_SIZE of 2048, less the NUL), checked when the boot source
// is given; the full command line, with the arguments ember adds, is checked again against the
// kernel's own limit when it is written.
inline constexpr size_t kMaxBootArgsSize = 2047;

Result<void> validate_boot_source(const BootSourceConfig& boot);
Result<void> validate_machine(const MachineConfig& machine);
Result<void> validate_drive(const DriveConfig& drive);
Result<void> validate_network_interface(const NetworkInterfaceConfig& iface);
// What to warn of a valid interface (a multicast guest MAC, which Firecracker takes), said once
// when the interface is given rather than each time a configuration is checked.
std::optional<std::string> guest_mac_warning(const NetworkInterfaceConfig& iface);
Result<void> validate_drive_update(const DriveUpdate& update);
Result<void> validate_network_interface_update(const NetworkInterfaceUpdate& update);
// Every part, and the rules between parts (unique ids, one root device, a boot source to boot).
Result<void> validate(const VmConfig& config);

// A VmConfig that validate() has passed. Only check() makes one, so a configuration is checked
// once, where it comes in (a config file, an API request, a state file), and what takes one (the
// Controller, Vmm::create) does not check it again.
class ValidVmConfig {
  public:
    ValidVmConfig() = default;  // nothing configured yet, which is valid
    static Result<ValidVmConfig> check(VmConfig config) {
        EMBER_TRY(validate(config));
        return ValidVmConfig(std::move(config));
    }
    const VmConfig& get() const { return config_; }
    const VmConfig* operator->() const { return &config_; }
    operator const VmConfig&() const { return config_; }  // NOLINT(google-explicit-constructor)

  private:
    explicit ValidVmConfig(VmConfig config) : config_(std::move(config)) {}
    VmConfig config_;
};

// "<key>: unknown variant `x`, expected `A` or `B`": Firecracker's words (serde's) for a value
// outside an enumeration, which its clients match on. The API's bodies use it too.
Error unknown_variant(const std::string& key, const std::string& value,
                      std::initializer_list<const char*> allowed);

// IDs are non-empty, at most 64 bytes, and only ASCII letters, digits and '_', as Firecracker's.
bool is_valid_id(const std::string& id);
// The microVM's --id: 1-64 ASCII letters, digits or '-', as Firecracker's.
bool is_valid_instance_id(const std::string& id);
// "aa:bb:cc:dd:ee:ff" in hex digits (multicast too, as Firecracker takes it).
bool is_valid_mac(const std::string& mac);

}  // namespace ember
