// ember: one microVM per process. This file turns the command line into a VmConfig and options,
// runs the VMM on the main thread, and prints one status line as it exits.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

#include "api/json/vm_config_json.h"
#include "vmm/base/log.h"
#include "vmm/base/unique_fd.h"
#include "vmm/devices/boot_timer.h"
#include "vmm/terminal.h"
#include "vmm/vmm.h"

#ifndef EMBER_VERSION
#define EMBER_VERSION "0.0.0"
#endif

namespace ember {
namespace {

constexpr const char* kUsage =
    R"(usage: ember --config-file PATH --no-api [options]

Starts one microVM. With --config-file, the VM is described by Firecracker's config-file JSON
(boot-source, machine-config, drives, network-interfaces) and boots at once.

  --config-file PATH   the VM's configuration (Firecracker's --config-file format)
  --no-api             do not serve the REST API (needs --config-file)
  --api-sock PATH      serve the REST API on this Unix socket (not available yet)
  --id ID              the microVM's identifier (letters, digits, '-', at most 64)
  --boot-timer         log the time from process start until the guest writes to the boot timer
  --level LEVEL        log level: Error, Warning, Info (default) or Debug
  --log-path PATH      append log lines to this file instead of stderr
  --serial-out PATH    write the guest's serial console to this file instead of stdout
  --version            print the version and exit
  --help               print this help and exit
)";

struct Cli {
    std::optional<std::string> config_file;
    bool no_api = false;
    std::optional<std::string> api_sock;
    std::string id = "anonymous-instance";
    bool boot_timer = false;
    std::optional<std::string> log_path;
    std::optional<std::string> serial_out;
    log::Level level = log::Level::Info;
    bool help = false;
    bool version = false;
};

Result<log::Level> parse_level(std::string_view s) {
    if (s == "Error" || s == "error") return log::Level::Error;
    if (s == "Warning" || s == "warning" || s == "Warn" || s == "warn") return log::Level::Warn;
    if (s == "Info" || s == "info") return log::Level::Info;
    if (s == "Debug" || s == "debug" || s == "Trace" || s == "trace") return log::Level::Debug;
    return fail("--level: '" + std::string(s) + "' is not one of Error, Warning, Info, Debug");
}

Result<Cli> parse_cli(int argc, char** argv) {
    Cli cli;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        auto value = [&]() -> Result<std::string> {
            if (i + 1 >= argc) return fail(std::string(arg) + ": needs a value");
            return std::string(argv[++i]);
        };
        auto take = [&](auto& slot) -> Result<void> {
            auto v = value();
            if (!v) return std::unexpected(v.error());
            slot = *v;
            return {};
        };
        Result<void> r;
        if (arg == "--config-file")
            r = take(cli.config_file);
        else if (arg == "--no-api")
            cli.no_api = true;
        else if (arg == "--api-sock")
            r = take(cli.api_sock);
        else if (arg == "--id")
            r = take(cli.id);
        else if (arg == "--boot-timer")
            cli.boot_timer = true;
        else if (arg == "--log-path")
            r = take(cli.log_path);
        else if (arg == "--serial-out")
            r = take(cli.serial_out);
        else if (arg == "--level") {
            auto v = value();
            if (!v) return std::unexpected(v.error());
            auto level = parse_level(*v);
            if (!level) return std::unexpected(level.error());
            cli.level = *level;
        } else if (arg == "--help" || arg == "-h")
            cli.help = true;
        else if (arg == "--version")
            cli.version = true;
        else
            return fail("unknown argument '" + std::string(arg) + "' (see --help)");
        if (!r) return std::unexpected(r.error());
    }
    if (cli.help || cli.version) return cli;
    if (!is_valid_instance_id(cli.id))
        return fail("--id: '" + cli.id + "' must be 1-64 characters of A-Z, a-z, 0-9 or -");
    if (!cli.no_api)
        return fail("the REST API is not available yet: run with --no-api and --config-file");
    if (!cli.config_file) return fail("--no-api needs --config-file");
    return cli;
}

// Config files are small; anything larger is a mistake (or an attack), not a VM description.
constexpr uintmax_t kMaxConfigFileBytes = 1 << 20;

Result<std::string> read_config_file(const std::string& path) {
    std::error_code ec;
    auto size = std::filesystem::file_size(path, ec);
    if (ec) return fail(path + ": " + ec.message());
    if (size > kMaxConfigFileBytes)
        return fail(path + ": " + std::to_string(size) + " bytes is larger than the " +
                    std::to_string(kMaxConfigFileBytes) + "-byte limit for a config file");
    std::ifstream in(path, std::ios::binary);
    if (!in) return fail_errno(path);
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) return fail_errno(path);
    return text.str();
}

// The console fd for the VMM thread: a pipe or terminal is reopened non-blocking, so a stalled
// reader blocks nothing; files are used as they are.
UniqueFd console_fd(int fd) {
    struct stat st {};
    if (::fstat(fd, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode))) {
        std::string proc = "/proc/self/fd/" + std::to_string(fd);
        int reopened = ::open(proc.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        if (reopened >= 0) return UniqueFd(reopened);
    }
    return UniqueFd(::dup(fd));
}

int run(int argc, char** argv, std::chrono::steady_clock::time_point start, uint64_t start_cpu_us) {
    std::signal(SIGPIPE, SIG_IGN);
    auto cli = parse_cli(argc, argv);
    if (!cli) {
        log::error(cli.error().message);
        return 1;
    }
    if (cli->help) {
        std::fputs(kUsage, stdout);
        return 0;
    }
    if (cli->version) {
        std::printf("ember v%s\n", EMBER_VERSION);
        return 0;
    }
    log::set_level(cli->level);
    UniqueFd log_file;
    if (cli->log_path) {
        log_file.reset(
            ::open(cli->log_path->c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
        if (!log_file.valid()) {
            log::error(fail_errno("--log-path " + *cli->log_path).error().message);
            return 1;
        }
        log::set_fd(log_file.get());
    }

    auto text = read_config_file(*cli->config_file);
    if (!text) {
        log::error("--config-file: " + text.error().message);
        return 1;
    }
    auto config = json::parse_vm_config(*text);
    if (!config) {
        log::error("--config-file " + *cli->config_file + ": " + config.error().message);
        return 1;
    }

    UniqueFd serial_out;
    if (cli->serial_out) {
        serial_out.reset(
            ::open(cli->serial_out->c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
        if (!serial_out.valid()) {
            log::error(fail_errno("--serial-out " + *cli->serial_out).error().message);
            return 1;
        }
    } else {
        serial_out = console_fd(STDOUT_FILENO);
    }

    RawTerminal terminal(STDIN_FILENO);
    VmmOptions options;
    options.boot_timer = cli->boot_timer;
    options.serial_out_fd = serial_out.get();
    options.serial_in_fd = terminal.active() ? STDIN_FILENO : -1;
    options.handle_termination_signals = true;
    options.start_time = start;
    options.start_cpu_us = start_cpu_us;
    options.quirks = detect_host_quirks();

    auto vmm = Vmm::create(*config, std::move(options));
    if (!vmm) {
        log::error(vmm.error().message);
        return 1;
    }
    if (auto r = (*vmm)->start(); !r) {
        log::error(r.error().message);
        return 1;
    }
    VmExitStatus status = (*vmm)->run();
    log::always("microVM '" + cli->id + "' exited: " + status.describe());
    return status.exit_code();
}

}  // namespace
}  // namespace ember

int main(int argc, char** argv) {
    // CPU time is counted from process start by the kernel; wall time from here, which misses only
    // the dynamic loader's work before main.
    auto start = std::chrono::steady_clock::now();
    return ember::run(argc, argv, start, 0);
}
