// Every JSON body the API parses, and the --config-file document: the first byte picks the parser,
// the rest is the text. A parser may refuse, with a message, but never crash; a config it takes
// must survive being written out and read back: to_json(parse(to_json(c))) == to_json(c).
#include <string>
#include <string_view>

#include "api/json/api_bodies.h"
#include "api/json/cpu_config_json.h"
#include "api/json/vm_config_json.h"
#include "api/json/writer.h"
#include "core/config/vm_config.h"
#include "fuzz/support/require.h"

using namespace ember;
using fuzz::require;

namespace {

template <typename T>
void refused_with_a_reason(const Result<T>& r) {
    if (!r) require(!r.error().message.empty(), "a refusal says why");
}

// A body its parser takes goes on to the value rules, which may refuse it too, with a reason.
template <typename T, typename Validate>
void parsed_then_validated(const Result<T>& r, Validate validate) {
    refused_with_a_reason(r);
    if (r) refused_with_a_reason(validate(*r));
}

void config_round_trip(std::string_view text) {
    // A cpu-config's "path" is read as the template's text itself, so the fuzzer reaches the
    // template's parser through the config file too.
    auto config = json::parse_vm_config(
        text, [](const std::string& path) -> Result<std::string> { return path; });
    refused_with_a_reason(config);
    if (!config) return;
    require(!(*config)->cpu_config_file, "a config's template file is read, not kept");
    refused_with_a_reason(Result<void>(validate(*config)));
    const std::string written = json::to_json(*config);
    auto again = json::parse_vm_config(written);
    if (!again) std::fprintf(stderr, "%s\n%s\n", written.c_str(), again.error().message.c_str());
    require(again.has_value(), "a config written out parses again");
    require(json::to_json(*again) == written, "a config written out reads back the same");
}

void machine_round_trip(std::string_view text) {
    auto machine = json::parse_body<MachineConfig>(text);
    refused_with_a_reason(machine);
    if (!machine) return;
    refused_with_a_reason(validate_machine(*machine));
    const std::string written = json::to_json(*machine);
    auto again = json::parse_body<MachineConfig>(written);
    if (!again) std::fprintf(stderr, "%s\n%s\n", written.c_str(), again.error().message.c_str());
    require(again.has_value(), "a machine config written out parses again");
    require(json::to_json(*again) == written, "a machine config written out reads back the same");
}

// A template written out reads back the same: what the client sends is what ember takes.
void cpu_config_round_trip(std::string_view text) {
    auto t = json::parse_cpu_config(text);
    refused_with_a_reason(t);
    if (!t) return;
    const std::string written = json::to_json(*t);
    auto again = json::parse_cpu_config(written);
    require(again.has_value(), "a CPU template written out parses again");
    require(json::to_json(*again) == written, "a CPU template written out reads back the same");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
    switch (data[0] % 15) {
        case 0: config_round_trip(text); break;
        case 1: machine_round_trip(text); break;
        case 2: {
            auto r = json::parse_body<BootSourceConfig>(text);
            refused_with_a_reason(r);
            break;
        }
        case 3: parsed_then_validated(json::parse_body<DriveConfig>(text), validate_drive); break;
        case 4:
            parsed_then_validated(json::parse_body<NetworkInterfaceConfig>(text),
                                  validate_network_interface);
            break;
        case 5: refused_with_a_reason(json::parse_body<MachineConfigPatch>(text)); break;
        case 6:
            parsed_then_validated(json::parse_body<DriveUpdate>(text), validate_drive_update);
            break;
        case 7:
            parsed_then_validated(json::parse_body<NetworkInterfaceUpdate>(text),
                                  validate_network_interface_update);
            break;
        case 8: refused_with_a_reason(json::parse_body<PutAction>(text)); break;
        case 9: refused_with_a_reason(json::parse_body<SetVmState>(text)); break;
        case 10: refused_with_a_reason(json::parse_body<LoggerConfig>(text)); break;
        case 11: refused_with_a_reason(json::parse_body<PutMetrics>(text)); break;
        case 12: refused_with_a_reason(json::parse_body<CreateSnapshot>(text)); break;
        case 13: refused_with_a_reason(json::parse_body<LoadSnapshot>(text)); break;
        case 14: cpu_config_round_trip(text); break;
    }
    return 0;
}
