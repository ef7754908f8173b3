#include "vmm/tools/emberctl/command_line.h"

#include <algorithm>
#include <charconv>
#include <utility>

namespace ember::emberctl {

const char* const kUsage = R"(usage: emberctl --sock PATH [--json] [--timeout-ms N] COMMAND [FLAGS]

Start an ember serving its API at PATH, and leave it running:
  boot      --kernel PATH [--rootfs PATH] [--tap NAME] [--guest-mac MAC] [--vcpus N]
            [--mem MIB] [--boot-args ARGS], or --config-file PATH (Firecracker's format);
            [--ember PATH] [--log PATH] [--console PATH]
  restore   --state PATH --mem-file PATH [--working-set PATH] [--resume] [--net IFACE=TAP]...
            [--ember PATH] [--log PATH] [--console PATH]
  restore   --manifest URL [--manifest-sha256 HEX] [--drive-root DIR [--writable-drive ID]...]
            [--cache DIR [--cache-bytes N]] [--ember-uffd PATH] [--resume] [--net IFACE=TAP]...
            [--ember PATH] [--log PATH] [--console PATH]: from a store, through ember-uffd, which
            writes the state file to PATH.state and listens at PATH.uffd, its log PATH.uffd.log;
            the snapshot's drives at DIR/<drive id>, never where the store says, and written
            only where --writable-drive names them
  restore   --manifest URL --cache DIR [--cache-bytes N] --view [--manifest-sha256 HEX]
            [--drive-root DIR [--writable-drive ID]...] [--ember-snapshot PATH] [--resume]
            [--net IFACE=TAP]... [--ember PATH] [--log PATH] [--console PATH]: from the snapshot
            made whole in the cache (ember-snapshot view), through the File backend
  restore   --manifest URL --cache DIR [--cache-bytes N] --on-host [--manifest-sha256 HEX]
            [--drive-root DIR [--writable-drive ID]...] [--ember-snapshot PATH]
            [--ember-uffd PATH] [--resume] [--net IFACE=TAP]... [--ember PATH] [--log PATH]
            [--console PATH]: from its view where one was made this boot (ember-snapshot
            find-view), else through ember-uffd, after which ember-snapshot view makes the view
            in the background, at the lowest CPU priority, for the next one
Drive the ember serving at PATH:
  status                       its id, state and version
  config                       its configuration (GET /vm/config)
  pause, resume
  snapshot  --state PATH --mem-file PATH [--diff]
  working-set --path PATH      write the pages the restored VM touched (PUT /snapshot/working-set)
  metrics   --path PATH        send metrics to PATH, and flush them now
  stop                         SIGTERM, then SIGKILL once --timeout-ms has passed
  call METHOD PATH [BODY]      any request; prints the answer's status on a line, then its body

--json prints what a script reads; errors go to stderr. Exit codes: 0 done, 1 the ember or its
API failed (for call: no answer, or a status other than 2xx), 2 a mistake on the command line.
)";

namespace {

struct Named {
    const char* name;
    Command command;
};
constexpr Named kCommands[] = {
    {"boot", Command::Boot},         {"restore", Command::Restore},
    {"status", Command::Status},     {"config", Command::Config},
    {"pause", Command::Pause},       {"resume", Command::Resume},
    {"snapshot", Command::Snapshot}, {"working-set", Command::WorkingSet},
    {"metrics", Command::Metrics},   {"stop", Command::Stop},
    {"call", Command::Call},
};

Result<uint32_t> number(const std::string& flag, const std::string& text) {
    uint32_t value = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size())
        return fail(flag + ": '" + text + "' is not a number");
    return value;
}

// Which flags each command takes, beyond the common ones.
bool takes(Command c, const std::string& flag) {
    const bool starts = c == Command::Boot || c == Command::Restore;
    if (flag == "--ember" || flag == "--log" || flag == "--console") return starts;
    if (c == Command::Boot)
        return flag == "--config-file" || flag == "--kernel" || flag == "--rootfs" ||
               flag == "--tap" || flag == "--guest-mac" || flag == "--vcpus" || flag == "--mem" ||
               flag == "--boot-args";
    if (c == Command::Restore)
        return flag == "--state" || flag == "--mem-file" || flag == "--working-set" ||
               flag == "--resume" || flag == "--net" || flag == "--manifest" || flag == "--cache" ||
               flag == "--ember-uffd" || flag == "--view" || flag == "--on-host" ||
               flag == "--manifest-sha256" || flag == "--ember-snapshot" ||
               flag == "--cache-bytes" || flag == "--drive-root" || flag == "--writable-drive";
    if (c == Command::Snapshot)
        return flag == "--state" || flag == "--mem-file" || flag == "--diff";
    if (c == Command::WorkingSet || c == Command::Metrics) return flag == "--path";
    return false;
}

// call's METHOD, PATH and BODY, in that order.
Result<void> take_operand(CommandLine& cl, const std::string& arg) {
    if (cl.method.empty()) {
        const bool token = std::ranges::all_of(arg, [](char c) { return c >= 'A' && c <= 'Z'; });
        if (!token) return fail("call: '" + arg + "' is not a method (GET, PUT, PATCH)");
        cl.method = arg;
    } else if (cl.request_path.empty()) {
        // Sent as the request line's target: a space or a line break would end it.
        const bool target = arg.starts_with('/') && std::ranges::none_of(arg, [](char c) {
                                return c == ' ' || c == '\r' || c == '\n';
                            });
        if (!target) return fail("call: '" + arg + "' is not a path starting with /");
        cl.request_path = arg;
    } else if (!cl.body) {
        cl.body = arg;
    } else {
        return fail("call: one BODY only; '" + arg + "' follows it");
    }
    return {};
}

Result<void> check_complete(const CommandLine& cl) {
    if (cl.sock.empty()) return fail("--sock is required");
    switch (cl.command) {
        case Command::Boot:
            if (cl.config_file && !cl.kernel.empty())
                return fail("boot: give --config-file or --kernel, not both");
            if (!cl.config_file && cl.kernel.empty())
                return fail("boot: --kernel (or --config-file) is required");
            return {};
        case Command::Restore:
            if (cl.manifest) {
                if (!cl.state_path.empty() || !cl.mem_file_path.empty() || cl.working_set_path)
                    return fail("restore: give --manifest, or --state and --mem-file, not both");
                if (cl.cache_bytes && !cl.cache_dir)
                    return fail("restore: --cache-bytes goes with --cache");
                if (cl.view && (!cl.cache_dir || cl.ember_uffd || cl.on_host))
                    return fail("restore: --view takes --cache, and no --ember-uffd or --on-host");
                if (cl.on_host && !cl.cache_dir) return fail("restore: --on-host takes --cache");
                if (!cl.view && !cl.on_host && cl.ember_snapshot)
                    return fail("restore: --ember-snapshot goes with --view or --on-host");
                return {};
            }
            if (cl.cache_dir || cl.cache_bytes || cl.ember_uffd || cl.view || cl.on_host ||
                cl.manifest_sha256 || cl.ember_snapshot || cl.drive_root ||
                !cl.writable_drives.empty())
                return fail(
                    "restore: --cache, --cache-bytes, --ember-uffd, --view, --on-host, "
                    "--manifest-sha256, --drive-root, --writable-drive and --ember-snapshot go "
                    "with --manifest");
            [[fallthrough]];
        case Command::Snapshot:
            if (cl.state_path.empty() || cl.mem_file_path.empty())
                return fail("--state and --mem-file are required");
            return {};
        case Command::WorkingSet:
        case Command::Metrics:
            if (cl.path.empty()) return fail("--path is required");
            return {};
        case Command::Call:
            if (cl.method.empty() || cl.request_path.empty())
                return fail("call: METHOD and PATH are required");
            return {};
        default: return {};
    }
}

}  // namespace

Result<CommandLine> parse_command_line(std::span<const std::string> args) {
    CommandLine cl;
    std::optional<Command> command;
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& arg = args[i];
        if (!arg.starts_with("--") && command == Command::Call) {
            EMBER_TRY(take_operand(cl, arg));
            continue;
        }
        if (!arg.starts_with("--")) {
            if (command) return fail("one command only: '" + arg + "' follows another");
            for (const auto& [name, c] : kCommands)
                if (arg == name) command = c;
            if (!command) return fail("unknown command '" + arg + "'");
            continue;
        }
        if (arg == "--json") {
            cl.json = true;
            continue;
        }
        if (arg == "--resume" || arg == "--diff" || arg == "--view" || arg == "--on-host") {
            if (!command || !takes(*command, arg))
                return fail(arg + " does not go with this command");
            (arg == "--resume" ? cl.resume
             : arg == "--diff" ? cl.diff
             : arg == "--view" ? cl.view
                               : cl.on_host) = true;
            continue;
        }
        const bool common = arg == "--sock" || arg == "--timeout-ms";
        if (!common && (!command || !takes(*command, arg)))
            return fail(command ? arg + " does not go with this command"
                                : arg + " is not a flag emberctl knows before a command");
        if (i + 1 >= args.size()) return fail(arg + " needs a value");
        const std::string& value = args[++i];
        if (arg == "--sock") {
            cl.sock = value;
            continue;
        }
        if (arg == "--timeout-ms") {
            auto ms = number(arg, value);
            EMBER_TRY(ms);
            if (*ms == 0) return fail("--timeout-ms: 0 would end every call before it began");
            cl.timeout = std::chrono::milliseconds(*ms);
            continue;
        }
        if (arg == "--ember")
            cl.ember = value;
        else if (arg == "--log")
            cl.log_path = value;
        else if (arg == "--console")
            cl.console_path = value;
        else if (arg == "--config-file")
            cl.config_file = value;
        else if (arg == "--kernel")
            cl.kernel = value;
        else if (arg == "--rootfs")
            cl.rootfs = value;
        else if (arg == "--tap")
            cl.tap = value;
        else if (arg == "--guest-mac")
            cl.guest_mac = value;
        else if (arg == "--boot-args")
            cl.boot_args = value;
        else if (arg == "--state")
            cl.state_path = value;
        else if (arg == "--mem-file")
            cl.mem_file_path = value;
        else if (arg == "--working-set")
            cl.working_set_path = value;
        else if (arg == "--manifest")
            cl.manifest = value;
        else if (arg == "--cache")
            cl.cache_dir = value;
        else if (arg == "--ember-uffd")
            cl.ember_uffd = value;
        else if (arg == "--manifest-sha256")
            cl.manifest_sha256 = value;
        else if (arg == "--drive-root")
            cl.drive_root = value;
        else if (arg == "--writable-drive")
            cl.writable_drives.push_back(value);
        else if (arg == "--ember-snapshot")
            cl.ember_snapshot = value;
        else if (arg == "--path")
            cl.path = value;
        else if (arg == "--cache-bytes") {
            uint64_t n = 0;
            const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
            if (ec != std::errc() || end != value.data() + value.size() || n == 0)
                return fail("--cache-bytes: '" + value + "' is not a number of bytes");
            cl.cache_bytes = n;
        } else if (arg == "--vcpus" || arg == "--mem") {
            auto n = number(arg, value);
            EMBER_TRY(n);
            (arg == "--vcpus" ? cl.vcpus : cl.mem_mib) = *n;
        } else if (arg == "--net") {
            const size_t eq = value.find('=');
            if (eq == std::string::npos || eq == 0 || eq + 1 == value.size())
                return fail("--net: '" + value + "' is not IFACE=TAP");
            cl.network_overrides.push_back({value.substr(0, eq), value.substr(eq + 1)});
        }
    }
    if (!command) return fail("no command");
    cl.command = *command;
    EMBER_TRY(check_complete(cl));
    return cl;
}

}  // namespace ember::emberctl
