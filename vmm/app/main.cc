// ember: one microVM per process. This file turns the command line into a VmConfig and options,
// runs the VMM on the main thread, and prints one status line as it exits.
#include <fcntl.h>
#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/json/vm_config_json.h"
#include "api/server/api_socket.h"
#include "api/server/router.h"
#include "api/server/uds_http_server.h"
#include "core/arch/x86_64/layout.h"
#include "core/base/elapsed.h"
#include "core/base/fatal_exit.h"
#include "core/base/log.h"
#include "core/base/log_limit.h"
#include "core/base/open_file.h"
#include "core/base/phase_times.h"
#include "core/base/signal_counts.h"
#include "core/base/unique_fd.h"
#include "core/devices/boot_timer.h"
#include "core/host_check/host_check.h"
#include "core/seccomp/default_programs.h"
#include "core/seccomp/filters.h"
#include "core/seccomp/install.h"
#include "core/seccomp/library_calls.h"
#include "vmm/app/controller.h"
#include "vmm/app/terminal.h"
#include "vmm/machine/prepared_vm.h"
#include "vmm/machine/vmm.h"

#ifndef EMBER_VERSION
#define EMBER_VERSION "0.0.0"
#endif

namespace ember {
namespace {

constexpr const char* kUsage =
    R"(usage: ember [--api-sock PATH | --no-api --config-file PATH] [options]

Starts one microVM. With the API (the default), ember serves Firecracker's REST API on a Unix
socket and boots when told to (PUT /actions InstanceStart). With --config-file, the VM described
by Firecracker's config-file JSON boots at once (and the API, if on, keeps serving).

  --api-sock PATH                 the API's Unix socket (default /run/ember.socket)
  --no-api                        do not serve the API (needs --config-file)
  --replace-stale-socket          replace a socket file at --api-sock that nobody listens on
                                  (by default any file there is refused, as Firecracker does)
  --serve-after-failed-load       keep serving after a failed PUT /snapshot/load (by default
                                  the process exits after answering, as Firecracker does)
  --no-prepare-vm                 do not make the KVM VM while the API waits for a configuration
                                  (by default ember makes it then, so that InstanceStart or
                                  PUT /snapshot/load spends only what the VM's own needs cost)
  --ready-memory-mib N            the guest memory the KVM VM made ahead holds in its slot while it
                                  waits (default 128, Firecracker's default size; 0: none): a VM
                                  of that size takes it, one of any other size removes it first
  --ready-fd N                    write a line ("ready") to descriptor N and close it once the KVM
                                  VM made ahead is complete (or none will be): a host agent that
                                  keeps embers ready polls it instead of reading the log
  --no-pre-fault                  on a load with a working set, leave its pages for KVM to map on
                                  the guest's first touch (by default they are mapped before the
                                  vCPUs run, where KVM has KVM_PRE_FAULT_MEMORY, Linux 6.10+)
  --config-file PATH              the VM's configuration (Firecracker's --config-file format)
  --id ID                         the microVM's identifier (letters, digits, '-', at most 64)
  --boot-timer                    log the time from process start until the guest writes the boot timer
  --level LEVEL                   log level, any case: Off, Error, Warning, Info (default), Debug
  --log-path PATH                 append log lines to this file or FIFO instead of stderr
  --metrics-path PATH             write metrics (JSON lines) to this file or FIFO
  --http-api-max-payload-size N   largest request body the API accepts (default 51200)
  --serial-out PATH               write the guest's serial console to this file instead of stdout
  --start-time-us US              process start time (CLOCK_MONOTONIC, as a parent measured it)
  --start-time-cpu-us US          CPU time spent before exec, for the boot timer
  --parent-cpu-time-us US         the parent's CPU time (logged)
  --no-seccomp                    no seccomp filters (by default each thread kind has its own)
  --seccomp-filter PATH           filters in Firecracker's JSON format instead of ember's own
  --print-seccomp-filter          print ember's own filters in that format and exit
  --show-level                    log lines carry their level (ember's default)
  --show-log-origin               log lines carry the file and line that wrote them
  --check-host                    report whether this host can run ember's microVMs and exit
                                  (0 when it can)
  --version                       print the version and exit
  --help                          print this help and exit
)";

struct Cli {
    std::optional<std::string> config_file;
    bool no_api = false;
    bool replace_stale_socket = false;
    bool serve_after_failed_load = false;
    bool no_prepare_vm = false;
    bool no_pre_fault = false;
    std::string api_sock = "/run/ember.socket";
    std::optional<std::string> metrics_path;
    size_t max_payload = 51200;
    std::optional<uint64_t> start_time_us;
    std::optional<int> ready_fd;
    uint64_t ready_memory_mib = kReadyMemoryBytes >> 20;
    uint64_t start_time_cpu_us = 0;
    std::vector<std::string> ignored;
    bool show_level = true;  // Firecracker's flag, and ember's default: always on
    bool show_log_origin = false;
    bool no_seccomp = false;
    std::optional<std::string> seccomp_filter;
    std::string id = "anonymous-instance";
    bool boot_timer = false;
    std::optional<std::string> log_path;
    std::optional<std::string> serial_out;
    log::Level level = log::Level::Info;
    bool help = false;
    bool version = false;
    bool check_host = false;
    bool print_seccomp_filter = false;
};

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
            EMBER_TRY(v);
            slot = *v;
            return {};
        };
        Result<void> r;
        if (arg == "--config-file")
            r = take(cli.config_file);
        else if (arg == "--replace-stale-socket")
            cli.replace_stale_socket = true;
        else if (arg == "--serve-after-failed-load")
            cli.serve_after_failed_load = true;
        else if (arg == "--no-prepare-vm")
            cli.no_prepare_vm = true;
        else if (arg == "--no-pre-fault")
            cli.no_pre_fault = true;
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
        else if (arg == "--metrics-path")
            r = take(cli.metrics_path);
        else if (arg == "--http-api-max-payload-size" || arg == "--start-time-us" ||
                 arg == "--start-time-cpu-us" || arg == "--parent-cpu-time-us" ||
                 arg == "--ready-fd" || arg == "--ready-memory-mib") {
            auto v = value();
            EMBER_TRY(v);
            char* end = nullptr;
            errno = 0;
            unsigned long long n = std::strtoull(v->c_str(), &end, 10);
            if (v->empty() || *end != '\0' || errno != 0)
                return fail(std::string(arg) + ": '" + *v + "' is not a whole number");
            if (arg == "--http-api-max-payload-size")
                cli.max_payload = n;
            else if (arg == "--start-time-us")
                cli.start_time_us = n;
            else if (arg == "--start-time-cpu-us")
                cli.start_time_cpu_us = n;
            else if (arg == "--ready-fd") {
                if (n < 3 || n > INT_MAX)
                    return fail("--ready-fd: " + *v + " is not a descriptor above stdio");
                cli.ready_fd = static_cast<int>(n);
            } else if (arg == "--ready-memory-mib") {
                // One region, as the memory made ahead is: below the 32-bit MMIO gap.
                if (n > (x86::kMmioGapStart >> 20))
                    return fail("--ready-memory-mib: " + *v + " MiB is more than the " +
                                std::to_string(x86::kMmioGapStart >> 20) +
                                " MiB below the 32-bit MMIO gap");
                cli.ready_memory_mib = n;
            } else
                cli.ignored.push_back(std::string(arg) + " " + *v);
        } else if (arg == "--show-level") {
            cli.show_level = true;
        } else if (arg == "--show-log-origin") {
            cli.show_log_origin = true;
        } else if (arg == "--no-seccomp") {
            cli.no_seccomp = true;
        } else if (arg == "--seccomp-filter") {
            r = take(cli.seccomp_filter);
        } else if (arg == "--level") {
            auto v = value();
            EMBER_TRY(v);
            auto level = log::parse_level(*v);
            if (!level) return fail("--level: " + level.error().message);
            cli.level = *level;
        } else if (arg == "--help" || arg == "-h")
            cli.help = true;
        else if (arg == "--version")
            cli.version = true;
        else if (arg == "--check-host")
            cli.check_host = true;
        else if (arg == "--print-seccomp-filter")
            cli.print_seccomp_filter = true;
        else
            return fail("unknown argument '" + std::string(arg) + "' (see --help)");
        EMBER_TRY(r);
    }
    if (cli.help || cli.version || cli.check_host || cli.print_seccomp_filter) return cli;
    if (!is_valid_instance_id(cli.id))
        return fail("--id: '" + cli.id + "' must be 1-64 characters of A-Z, a-z, 0-9 or -");
    if (cli.no_api && !cli.config_file) return fail("--no-api needs --config-file");
    if (cli.no_seccomp && cli.seccomp_filter)
        return fail("--no-seccomp and --seccomp-filter: choose one");
    return cli;
}

// --ready-fd's descriptor, inherited open for writing, written without blocking, so that a reader
// that never reads cannot stall the VMM thread. A pipe or terminal is reopened non-blocking as
// console_fd's are, so that the parent's own description is left as it was; elsewhere (a socket,
// or no /proc, as in the jail) the description itself is made non-blocking.
Result<UniqueFd> ready_descriptor(int fd) {
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0) return fail("not an open descriptor");
    if ((flags & O_ACCMODE) == O_RDONLY) return fail("not open for writing");
    UniqueFd inherited(fd);
    struct stat st{};
    if (::fstat(fd, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode))) {
        const std::string proc = "/proc/self/fd/" + std::to_string(fd);
        UniqueFd reopened(::open(proc.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
        if (reopened.valid()) return reopened;
    }
    if (::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 || ::fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
        return fail(os_error(errno));
    return inherited;
}

// Config files are small; anything larger is a mistake (or an attack), not a VM description.
constexpr uintmax_t kMaxConfigFileBytes = 1 << 20;

Result<std::string> read_config_file(const std::string& path);

// Each thread kind's filter: ember's own, --seccomp-filter's, or none with --no-seccomp.
Result<seccomp::ThreadFilters> thread_filters(const Cli& cli) {
    if (cli.no_seccomp) return seccomp::ThreadFilters{};
    if (!cli.seccomp_filter) return seccomp::default_programs();
    auto text = read_config_file(*cli.seccomp_filter);
    EMBER_TRY(text, "--seccomp-filter");
    auto filters = seccomp::compile_filters(*text);
    EMBER_TRY(filters, "--seccomp-filter " + *cli.seccomp_filter);
    return filters;
}

Result<std::string> read_config_file(const std::string& path) {
    return read_small_file(path, kMaxConfigFileBytes);
}

// The console fd for the VMM thread: a pipe or terminal is reopened non-blocking, so a stalled
// reader blocks nothing; files are used as they are.
UniqueFd console_fd(int fd) {
    struct stat st{};
    if (::fstat(fd, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode))) {
        std::string proc = "/proc/self/fd/" + std::to_string(fd);
        int reopened = ::open(proc.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        if (reopened >= 0) return UniqueFd(reopened);
    }
    return UniqueFd(::dup(fd));
}

// Never through a symbolic link, whose target it would truncate; a FIFO or terminal is written
// non-blocking as console_fd's are, and only a regular file is truncated.
Result<UniqueFd> open_serial_out(const std::string& path) {
    struct stat st{};
    if (::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode))
        return fail("is a symbolic link; name the file itself");
    auto fd = open_file(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK, FileKinds::Any);
    EMBER_TRY(fd);
    if (::fstat(fd->get(), &st) == 0 && S_ISREG(st.st_mode) && ::ftruncate(fd->get(), 0) < 0)
        return fail(os_error(errno));
    return fd;
}

// What ember answers without a VM (--help, --version, the default filter, --check-host), with the
// exit status; nothing for a run.
std::optional<int> answer_without_a_vm(const Cli& cli) {
    if (cli.help) {
        std::fputs(kUsage, stdout);
        return 0;
    }
    if (cli.version) {
        // Firecracker's first line, which Kata's driver and Firecracker's tests parse for the
        // version of the API spoken; then what actually runs.
        std::printf("Firecracker v%s\nember v%s\n", api::kPinnedFirecrackerVersion, EMBER_VERSION);
        return 0;
    }
    if (cli.print_seccomp_filter) {
        const std::string_view json = seccomp::default_filters_json();
        std::fwrite(json.data(), 1, json.size(), stdout);
        return 0;
    }
    if (cli.check_host) {
        HostReport report = check_host();
        for (const auto& line : report.lines) std::printf("%s\n", format_check_line(line).c_str());
        std::printf("%s\n", report.can_run_vms ? "ember can run microVMs on this host"
                                               : "ember cannot run microVMs on this host");
        return report.can_run_vms ? 0 : 1;
    }
    return std::nullopt;
}

// The log as the flags ask, and its file (--log-path) when one is named.
Result<UniqueFd> set_up_log(const Cli& cli) {
    log::set_level(cli.level);
    log::set_instance_id(cli.id);
    log::set_show_level(cli.show_level);
    log::set_show_origin(cli.show_log_origin);
    if (!cli.log_path) return UniqueFd();
    // As PUT /logger's, but created when missing, as --log-path always has been.
    auto opened = open_file(*cli.log_path, O_RDWR | O_APPEND | O_CREAT | O_NONBLOCK,
                            FileKinds::RegularOrFifo);
    EMBER_TRY(opened, "--log-path " + *cli.log_path);
    log::set_fd(opened->get());
    return opened;
}

Result<std::optional<ValidVmConfig>> config_from_file(const Cli& cli) {
    if (!cli.config_file) return std::nullopt;
    auto text = read_config_file(*cli.config_file);
    EMBER_TRY(text, "--config-file");
    auto parsed = json::parse_vm_config(*text, read_config_file);
    EMBER_TRY(parsed, "--config-file " + *cli.config_file);
    return std::move(*parsed);
}

Result<UniqueFd> serial_out_of(const Cli& cli) {
    if (!cli.serial_out) return console_fd(STDOUT_FILENO);
    auto opened = open_serial_out(*cli.serial_out);
    EMBER_TRY(opened, "--serial-out " + *cli.serial_out);
    return opened;
}

// What the Controller and its Vmm are run with, from the flags; the API's metrics are read
// through `router` and `api_server` once the server has started.
ControllerOptions controller_options(const Cli& cli, const seccomp::ThreadFilters& filters,
                                     int serial_out, bool serial_in,
                                     std::chrono::steady_clock::time_point start,
                                     const std::unique_ptr<api::Router>& router,
                                     const std::optional<metrics::Group>& api_server) {
    ControllerOptions options;
    options.instance_id = cli.id;
    options.vmm.boot_timer = cli.boot_timer;
    options.vmm.serial_out_fd = serial_out;
    options.vmm.serial_in_fd = serial_in ? STDIN_FILENO : -1;
    options.vmm.start_time = start;
    options.vmm.start_cpu_us = cli.start_time_cpu_us;
    options.vmm.quirks = detect_host_quirks();
    options.api_metrics = [&router, &api_server] {
        std::vector<metrics::Group> groups;
        if (api_server) groups.push_back(*api_server);
        if (router) std::ranges::move(router->metrics(), std::back_inserter(groups));
        return groups;
    };
    options.exit_on_failed_load = !cli.serve_after_failed_load;
    options.prepare_vm = !cli.no_prepare_vm;
    options.ready_memory_bytes = cli.ready_memory_mib << 20;
    options.vmm.pre_fault = !cli.no_pre_fault;
    options.vmm.vcpu_filter = &filters.vcpu;
    options.vmm.vmm_filter = &filters.vmm;
    options.vmm_filter = &filters.vmm;
    return options;
}

// The API server on the socket already listening, each of its threads under the API filter; one
// that cannot be confined, or a server that fails, stops the Controller.
Result<std::unique_ptr<api::UdsHttpServer>> serve_api(const Cli& cli, UniqueFd listening,
                                                      api::Router& router,
                                                      const seccomp::ThreadFilters& filters,
                                                      Controller& controller) {
    api::HttpServerOptions http;
    http.socket_path = cli.api_sock;
    http.listen_fd = std::move(listening);
    http.max_payload = cli.max_payload;
    http.handler = &router;
    http.on_thread_start = [&filters, &controller] {
        log::set_thread_name("ember_api");
        auto r = seccomp::install(filters.api, seccomp::ThreadKind::Api);
        if (!r) controller.stop(r.error().message);
        return r.has_value();
    };
    http.on_warning = [](const std::string& message) { log::warn(message); };
    http.on_failure = [&controller](const std::string& message) { controller.stop(message); };
    return api::UdsHttpServer::start(std::move(http));
}

int run(int argc, char** argv, std::chrono::steady_clock::time_point start) {
    signal_counts::count_and_ignore_survivable();
    auto cli = parse_cli(argc, argv);
    // Before ember opens a descriptor of its own: --ready-fd may only name one it inherited.
    std::optional<Result<UniqueFd>> ready;
    if (cli && cli->ready_fd) ready = ready_descriptor(*cli->ready_fd);
    log::detach_stderr();
    log::set_thread_name("ember");
    auto stop = [](const Error& e) {
        log::error(e.message);
        return 1;
    };
    if (!cli) return stop(cli.error());
    if (ready && !*ready)
        return stop(std::move(ready->error()).wrap("--ready-fd " + std::to_string(*cli->ready_fd)));
    if (auto answered = answer_without_a_vm(*cli)) return *answered;
    auto log_file = set_up_log(*cli);
    if (!log_file) return stop(log_file.error());
    // Firecracker's first line, which its test framework waits for, with what actually runs.
    log::info(std::string("Running Firecracker v") + api::kPinnedFirecrackerVersion +
              " (ember v" EMBER_VERSION ")");
    for (const auto& flag : cli->ignored)
        log::info("accepted " + flag + " (no effect in ember yet)");

    PhaseTimes phases(start, "main");
    auto filters = thread_filters(*cli);
    if (!filters) return stop(filters.error());
    phases.mark("seccomp filters");
    // The main thread is the VMM thread; a fatal signal on another thread hands it the exit.
    fatal_exit::init();
    fatal_exit::mark_vmm_thread();
    if (!cli->no_seccomp) {
        seccomp::make_library_calls_once();
        seccomp::install_sigsys_reporter();
    }
    auto config = config_from_file(*cli);
    if (!config) return stop(config.error());
    auto serial_out = serial_out_of(*cli);
    if (!serial_out) return stop(serial_out.error());

    RawTerminal terminal(STDIN_FILENO);
    if (cli->start_time_us)
        start =
            std::chrono::steady_clock::time_point(std::chrono::microseconds(*cli->start_time_us));
    std::unique_ptr<api::Router> router;
    // Firecracker's api_server group: how long the process took to serve its API, in wall time
    // from its start (or --start-time-us) and in CPU time (less --start-time-cpu-us).
    std::optional<metrics::Group> api_server;
    ControllerOptions options = controller_options(*cli, *filters, serial_out->get(),
                                                   terminal.active(), start, router, api_server);
    if (ready) options.ready_fd = std::move(**ready);
    options.vmm.phases = &phases;
    // Created before any other thread: it blocks the termination signals for its signalfd.
    auto controller = Controller::create(std::move(options));
    if (!controller) return stop(controller.error());
    phases.mark("controller");
    if (cli->metrics_path) {
        if (auto r = (*controller)->execute_now(PutMetrics{*cli->metrics_path}); !r)
            return stop(std::move(r.error()).wrap("--metrics-path"));
    }

    // The socket is listening from here, so clients can connect at once; their requests are
    // read once the VM from --config-file runs, so none sees it "Not started" (as in Firecracker).
    std::optional<UniqueFd> listening;
    if (!cli->no_api) {
        auto l = api::listen_unix_socket(cli->api_sock, cli->replace_stale_socket);
        if (!l) return stop(l.error());
        listening = std::move(*l);
        fatal_exit::remember_socket(cli->api_sock);
    }
    // Until the server owns it, a failed start removes the socket file it made.
    auto give_up = [&](std::string_view why) {
        log::error(why);
        if (listening) ::unlink(cli->api_sock.c_str());
        return 1;
    };
    if (*config) {
        if (auto r = (*controller)->apply(**config); !r)
            return give_up("--config-file " + *cli->config_file + ": " + r.error().message);
        if (auto r = (*controller)->execute_now(InstanceStart{}); !r)
            return give_up(r.error().message);
    }
    std::unique_ptr<api::UdsHttpServer> server;
    if (listening) {
        router = std::make_unique<api::Router>(**controller);
        auto started = serve_api(*cli, std::move(*listening), *router, *filters, **controller);
        if (!started) return give_up(started.error().message);
        server = std::move(*started);
        const uint64_t cpu = process_cpu_time_us();
        using Kind = metrics::Field::Kind;
        api_server = metrics::Group{"api_server",
                                    {{"process_startup_time_us", micros_since(start), Kind::Value},
                                     {"process_startup_time_cpu_us",
                                      cpu - std::min(cpu, cli->start_time_cpu_us), Kind::Value}}};
    }
    VmExitStatus status = (*controller)->run();
    server.reset();
    std::string dropped;
    if (const uint64_t n = log::lines_dropped())
        dropped = "; " + std::to_string(n) + " log lines the guest caused were not written (log " +
                  "limits)";
    log::always("microVM '" + cli->id + "' exited: " + status.describe() + dropped);
    return status.exit_code();
}

}  // namespace
}  // namespace ember

int main(int argc, char** argv) {
    // CPU time is counted from process start by the kernel; wall time from here, which misses only
    // the dynamic loader's work before main.
    auto start = std::chrono::steady_clock::now();
    // glibc gives each new thread that allocates an arena of its own, and the first time a process
    // has more than 8 it reads the CPU count from /sys to set their limit: an openat the API and
    // vCPU threads' seccomp filters forbid, which a burst of API connections reached. A fixed
    // limit is never looked up. One arena: ember's threads allocate little and each has its own
    // cache of small blocks (tcache), while every arena more is pages of its own in each of a
    // thousand clones (11 KiB of a restored clone's USS, net, perf/density).
    ::mallopt(M_ARENA_MAX, 1);
    return ember::run(argc, argv, start);
}
