#include "api/json/vm_config_json.h"

#include "api/json/config_codec.h"

namespace ember::json {
namespace {

// Parses a body that must be one JSON object into a T, by T's description.
template <config::Described T>
Result<T> parse_as(std::string_view text) {
    auto o = parse_object(text);
    EMBER_TRY(o);
    return read_struct<T>(*o, "");
}

}  // namespace

Result<ValidVmConfig> parse_vm_config(std::string_view text) {
    auto parsed = parse_as<VmConfig>(text);
    EMBER_TRY(parsed);
    auto config = ValidVmConfig::check(std::move(*parsed));
    EMBER_TRY(config);
    // Checked last, so a document with a worse problem is told about that one first.
    if (!(*config)->boot_source) return fail("boot-source: missing field `boot-source`");
    return config;
}

Result<BootSourceConfig> parse_boot_source(std::string_view text) {
    return parse_as<BootSourceConfig>(text);
}
Result<MachineConfig> parse_machine_config(std::string_view text) {
    return parse_as<MachineConfig>(text);
}
Result<DriveConfig> parse_drive(std::string_view text) {
    return parse_as<DriveConfig>(text);
}
Result<NetworkInterfaceConfig> parse_network_interface(std::string_view text) {
    return parse_as<NetworkInterfaceConfig>(text);
}

}  // namespace ember::json
