// emberctl's command line, checked whole before anything runs: a command, its flags, and the
// flags every command takes. A mistake is a message and exit code 2, and nothing has happened.
#pragma once

#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/action_fields.h"
#include "core/base/error.h"

namespace ember::emberctl {

enum class Command {
    Boot,
    Restore,
    Status,
    Config,
    Pause,
    Resume,
    Snapshot,
    WorkingSet,
    Metrics,
    Stop,
    Call
};

struct CommandLine {
    Command command = Command::Status;
    std::string sock;
    bool json = false;
    std::chrono::milliseconds timeout{10'000};

    // boot and restore start an ember at `sock`, left running when emberctl ends.
    std::string ember = "ember";
    std::string log_path;
    std::string console_path;

    // boot: a config file, or the flags below.
    std::optional<std::string> config_file;
    std::string kernel;
    std::optional<std::string> rootfs;
    std::optional<std::string> tap;
    std::optional<std::string> guest_mac;
    uint32_t vcpus = 1;
    uint32_t mem_mib = 128;
    std::optional<std::string> boot_args;

    // snapshot and restore.
    std::string state_path;
    std::string mem_file_path;
    bool diff = false;
    std::optional<std::string> working_set_path;
    bool resume = false;
    std::vector<NetworkOverride> network_overrides;
    // restore from a store: its manifest's URL, the host's chunk cache, ember-uffd's path; or,
    // with `view`, from its view in the cache, pinned where given, ember-snapshot's path; or, with
    // `on_host`, from the view where one is made, else through ember-uffd, the view then made in
    // the background.
    std::optional<std::string> manifest;
    std::optional<std::string> cache_dir;
    std::optional<uint64_t> cache_bytes;
    std::optional<std::string> ember_uffd;
    bool view = false;
    bool on_host = false;
    std::optional<std::string> manifest_sha256;
    std::optional<std::string> drive_root;     // where the snapshot's drives are opened
    std::vector<std::string> writable_drives;  // and those of them it may write
    std::optional<std::string> ember_snapshot;

    // working-set and metrics.
    std::string path;

    // call: METHOD PATH [BODY], sent as they are.
    std::string method;
    std::string request_path;
    std::optional<std::string> body;
};

Result<CommandLine> parse_command_line(std::span<const std::string> args);

extern const char* const kUsage;

}  // namespace ember::emberctl
