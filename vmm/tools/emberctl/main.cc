// emberctl: a command line over ember's client library, in the spirit of Firecracker's firectl.
// It boots or restores a VM in an ember it starts and leaves running, and drives a running ember
// through its socket: status, config, pause, resume, snapshot, working set, metrics, stop, and
// any request as it is given (call), for scripts.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "api/client/ember_process.h"
#include "api/client/page_handler.h"
#include "api/client/store_view.h"
#include "api/client/view_maker.h"
#include "api/json/vm_config_json.h"
#include "api/json/writer.h"
#include "core/base/open_file.h"
#include "core/base/unique_fd.h"
#include "vmm/tools/emberctl/command_line.h"

namespace ember::emberctl {
namespace {

constexpr int kFailed = 1;
constexpr int kUsageError = 2;

// A config file or CPU template is a few KiB; this bounds what a mistaken path (a disk image)
// costs.
Result<std::string> read_config_file(const std::string& path) {
    return read_small_file(path, 1 << 20);
}

Result<VmConfig> config_of(const CommandLine& cl) {
    if (cl.config_file) {
        auto text = read_config_file(*cl.config_file);
        EMBER_TRY(text);
        auto config = json::parse_vm_config(*text, read_config_file);
        EMBER_TRY(config, *cl.config_file);
        return config->get();
    }
    VmConfig c;
    c.machine.vcpu_count = cl.vcpus;
    c.machine.mem_size_mib = cl.mem_mib;
    c.boot_source.emplace();
    c.boot_source->kernel_image_path = cl.kernel;
    c.boot_source->boot_args = cl.boot_args;
    if (cl.rootfs) {
        DriveConfig& d = c.drives.emplace_back();
        d.drive_id = "rootfs";
        d.path_on_host = *cl.rootfs;
        d.is_root_device = true;
    }
    if (cl.tap) {
        NetworkInterfaceConfig& n = c.network_interfaces.emplace_back();
        n.iface_id = "eth0";
        n.host_dev_name = *cl.tap;
        n.guest_mac = cl.guest_mac;
    }
    return c;
}

client::ProcessOptions process_options(const CommandLine& cl) {
    client::ProcessOptions o;
    o.ember = cl.ember;
    o.socket_path = cl.sock;
    o.log_path = cl.log_path;
    o.console_path = cl.console_path;
    o.start_timeout = cl.timeout;
    o.client.timeout = cl.timeout;
    o.client.snapshot_timeout = std::max(o.client.snapshot_timeout, cl.timeout);
    return o;
}

client::Client client_of(const CommandLine& cl) {
    client::ClientOptions o;
    o.socket_path = cl.sock;
    o.timeout = cl.timeout;
    o.snapshot_timeout = std::max(o.snapshot_timeout, cl.timeout);
    return client::Client(std::move(o));
}

// Starts an ember, runs `drive` on it, and leaves it running when that worked.
template <typename Drive>
Result<pid_t> start_and(const CommandLine& cl, Drive drive) {
    auto ember = client::EmberProcess::start(process_options(cl));
    EMBER_TRY(ember);
    EMBER_TRY(drive(ember->client()));
    return ember->release();
}

void print_started(const CommandLine& cl, const char* what, pid_t pid) {
    if (cl.json)
        std::printf("{\"pid\":%d,\"socket\":%s}\n", pid, json::quote(cl.sock).c_str());
    else
        std::printf("%s: ember (pid %d) serves %s\n", what, pid, cl.sock.c_str());
}

void print_config(const CommandLine& cl, const VmConfig& c) {
    if (cl.json) {
        std::printf("%s\n", json::to_json(c).c_str());
        return;
    }
    std::printf("vCPUs %u, memory %u MiB\n", c.machine.vcpu_count, c.machine.mem_size_mib);
    if (c.boot_source) std::printf("kernel %s\n", c.boot_source->kernel_image_path.c_str());
    for (const auto& d : c.drives)
        std::printf("drive %s: %s%s%s\n", d.drive_id.c_str(), d.path_on_host.c_str(),
                    d.is_root_device ? ", root" : "", d.is_read_only ? ", read-only" : "");
    for (const auto& n : c.network_interfaces)
        std::printf("interface %s: tap %s%s%s\n", n.iface_id.c_str(), n.host_dev_name.c_str(),
                    n.guest_mac ? ", MAC " : "", n.guest_mac ? n.guest_mac->c_str() : "");
}

void print_done(const CommandLine& cl, const char* what) {
    if (cl.json)
        std::printf("{\"done\":%s}\n", json::quote(what).c_str());
    else
        std::printf("%s: done\n", what);
}

// The answer as it came, whatever its status: a script reads the status from the first line (as
// curl's -w '%{http_code}' gives it) and the body after it. A status other than 2xx fails the
// call, once the answer is printed.
Result<void> call(const CommandLine& cl) {
    const auto answer =
        client_of(cl).call(cl.method, cl.request_path, cl.body.value_or(""), cl.timeout);
    EMBER_TRY(answer);
    if (cl.json)
        std::printf("{\"status\":%d,\"body\":%s}\n", answer->status,
                    json::quote(answer->body).c_str());
    else {
        std::printf("%d\n", answer->status);
        std::fwrite(answer->body.data(), 1, answer->body.size(), stdout);
    }
    if (answer->status / 100 == 2) return {};
    return fail(cl.method + " " + cl.request_path + ": HTTP " + std::to_string(answer->status));
}

Result<void> run(const CommandLine& cl) {
    switch (cl.command) {
        case Command::Boot: {
            auto config = config_of(cl);
            EMBER_TRY(config);
            auto pid = start_and(cl, [&](client::Client& c) -> Result<void> {
                EMBER_TRY(c.configure(*config));
                return c.start();
            });
            EMBER_TRY(pid);
            print_started(cl, "booted", *pid);
            return {};
        }
        case Command::Restore: {
            LoadSnapshot load;
            load.snapshot_path = cl.state_path;
            load.mem_backend = MemBackend{MemBackendType::File, cl.mem_file_path};
            load.working_set_path = cl.working_set_path;
            std::optional<client::PageHandler> handler;
            // The view to make in the background once the restore is done (--on-host, with none
            // made yet).
            std::optional<client::StoreView> make_view;
            if (cl.manifest && (cl.view || cl.on_host)) {
                client::StoreView from;
                from.manifest_url = *cl.manifest;
                from.cache_dir = *cl.cache_dir;
                from.cache_bytes = cl.cache_bytes.value_or(0);
                // Making a view fetches the snapshot's memory: a longer --timeout-ms lengthens it.
                from.timeout = std::max(from.timeout, cl.timeout);
                from.manifest_sha256 = cl.manifest_sha256.value_or("");
                from.drive_root = cl.drive_root.value_or("");
                from.writable_drives = cl.writable_drives;
                if (cl.ember_snapshot) from.ember_snapshot = *cl.ember_snapshot;
                if (cl.view) {
                    auto viewed = client::view_load(from);
                    EMBER_TRY(viewed);
                    load = std::move(*viewed);
                } else {
                    auto found = client::find_view_load(from);
                    EMBER_TRY(found);
                    if (*found)
                        load = std::move(**found);
                    else
                        make_view = from;
                }
            }
            // Through ember-uffd: --manifest alone, or --on-host where no view is made yet.
            const bool lazily = cl.manifest && !cl.view && (!cl.on_host || make_view);
            if (lazily) {
                client::StoreRestore from;
                from.manifest_url = *cl.manifest;
                from.socket_path = cl.sock + ".uffd";
                from.state_path = cl.sock + ".state";
                from.log_path = cl.sock + ".uffd.log";
                from.cache_dir = cl.cache_dir.value_or("");
                from.cache_bytes = cl.cache_bytes.value_or(0);
                from.manifest_sha256 = cl.manifest_sha256.value_or("");
                from.drive_root = cl.drive_root.value_or("");
                from.writable_drives = cl.writable_drives;
                if (cl.ember_uffd) from.ember_uffd = *cl.ember_uffd;
                auto started = client::PageHandler::start(from);
                EMBER_TRY(started);
                handler.emplace(std::move(*started));
                load = handler->load();
            }
            load.resume_vm = cl.resume;
            load.network_overrides = cl.network_overrides;
            auto pid = start_and(cl, [&](client::Client& c) { return c.load_snapshot(load); });
            EMBER_TRY(pid);
            // It serves the VM for as long as the VM lives, after emberctl has ended.
            if (handler) handler->let_go();
            if (make_view) {
                // The restore is done whether or not the view is made: a failure to start the
                // maker is said, not an error of the restore.
                auto maker = client::ViewMaker::start(*make_view);
                if (maker)
                    maker->let_go();
                else
                    std::fprintf(stderr, "emberctl: the view is not being made: %s\n",
                                 maker.error().message.c_str());
            }
            print_started(cl, "restored", *pid);
            return {};
        }
        case Command::Status: {
            auto info = client_of(cl).describe_instance();
            EMBER_TRY(info);
            if (cl.json)
                std::printf("%s\n", json::to_json(*info).c_str());
            else
                std::printf("%s '%s' (v%s): %s\n", info->app_name.c_str(), info->id.c_str(),
                            info->vmm_version.c_str(), state_name(info->state));
            return {};
        }
        case Command::Config: {
            auto config = client_of(cl).vm_config();
            EMBER_TRY(config);
            print_config(cl, *config);
            return {};
        }
        case Command::Pause: EMBER_TRY(client_of(cl).pause()); break;
        case Command::Resume: EMBER_TRY(client_of(cl).resume()); break;
        case Command::Snapshot: {
            auto c = client_of(cl);
            CreateSnapshot create;
            create.snapshot_type = cl.diff ? SnapshotType::Diff : SnapshotType::Full;
            create.snapshot_path = cl.state_path;
            create.mem_file_path = cl.mem_file_path;
            EMBER_TRY(c.create_snapshot(create));
            break;
        }
        case Command::WorkingSet:
            EMBER_TRY(client_of(cl).record_working_set(RecordWorkingSet{cl.path}));
            break;
        case Command::Metrics: {
            auto c = client_of(cl);
            EMBER_TRY(c.put_metrics(PutMetrics{cl.path}));
            EMBER_TRY(c.flush_metrics());
            break;
        }
        case Command::Stop: EMBER_TRY(client::stop_ember_at(cl.sock, cl.timeout)); break;
        case Command::Call: return call(cl);
    }
    constexpr const char* kNames[] = {"boot",    "restore", "status",   "config",
                                      "pause",   "resume",  "snapshot", "working-set",
                                      "metrics", "stop",    "call"};
    print_done(cl, kNames[static_cast<int>(cl.command)]);
    return {};
}

}  // namespace
}  // namespace ember::emberctl

int main(int argc, char** argv) {
    using namespace ember::emberctl;
    ::signal(SIGPIPE, SIG_IGN);
    const std::vector<std::string> args(argv + 1, argv + argc);
    if (args.size() == 1 && (args[0] == "--help" || args[0] == "-h")) {
        std::fputs(kUsage, stdout);
        return 0;
    }
    auto cl = parse_command_line(args);
    if (!cl) {
        std::fprintf(stderr, "emberctl: %s\n\n%s", cl.error().message.c_str(), kUsage);
        return kUsageError;
    }
    if (auto done = run(*cl); !done) {
        std::fprintf(stderr, "emberctl: %s\n", done.error().message.c_str());
        return kFailed;
    }
    return 0;
}
