#include "api/json/vm_config_json.h"

#include "api/json/config_codec.h"

namespace ember::json {
Result<ValidVmConfig> parse_vm_config(std::string_view text) {
    auto parsed = read_body<VmConfig>(text);
    EMBER_TRY(parsed);
    auto config = ValidVmConfig::check(std::move(*parsed));
    EMBER_TRY(config);
    // Checked last, so a document with a worse problem is told about that one first.
    if (!(*config)->boot_source) return fail("boot-source: missing field `boot-source`");
    return config;
}

Result<BootSourceConfig> parse_boot_source(std::string_view text) {
    return read_body<BootSourceConfig>(text);
}
Result<MachineConfig> parse_machine_config(std::string_view text) {
    return read_body<MachineConfig>(text);
}
Result<DriveConfig> parse_drive(std::string_view text) {
    return read_body<DriveConfig>(text);
}
Result<NetworkInterfaceConfig> parse_network_interface(std::string_view text) {
    return read_body<NetworkInterfaceConfig>(text);
}

}  // namespace ember::json
