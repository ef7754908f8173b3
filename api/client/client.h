// api/client: one typed call for each endpoint ember serves (core/endpoints.h), over its Unix
// socket, with the request and answer types and the JSON descriptions the server reads and writes
// (core/config/ config_fields.h, core/action_fields.h, core/answer_fields.h), so the two cannot
// drift. Every call is bounded in time from connecting to the answer's last byte, and every answer
// in size; ember's fault_message comes back as an Error naming the call ("PUT /drives/rootfs:
// ..."). A connection per call; one call at a time (a second caller waits).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "api/client/watchdog.h"
#include "core/action_fields.h"
#include "core/answer_fields.h"
#include "core/base/error.h"
#include "core/config/machine_config_patch.h"
#include "core/config/vm_config.h"
#include "core/endpoints.h"

namespace httplib {
class Client;
}

namespace ember::client {

struct ClientOptions {
    std::string socket_path;
    // A call's whole bound. Snapshot create and load write or map a VM's memory, and take theirs.
    std::chrono::milliseconds timeout{10'000};
    std::chrono::milliseconds snapshot_timeout{300'000};
    // An answer longer than this ends the call with an error (GET /vm/config of a VM with many
    // drives is a few KiB).
    size_t max_answer_bytes = 1 << 20;
    // Shared by many clients (a pool's); the client makes its own when this is empty.
    std::shared_ptr<Watchdog> watchdog;
};

// An answer as it came: for endpoints this library does not type, and for tests.
struct Answer {
    int status = 0;
    std::string body;
};

class Client {
  public:
    explicit Client(ClientOptions options);
    ~Client();
    Client(Client&&) noexcept;
    Client& operator=(Client&&) noexcept;

    const std::string& socket_path() const { return options_.socket_path; }

    Result<InstanceInfo> describe_instance();
    Result<VersionInfo> version();
    Result<VmConfig> vm_config();
    Result<MachineConfig> machine_config();

    Result<void> put_machine_config(const MachineConfig& m);
    Result<void> patch_machine_config(const MachineConfigPatch& p);
    Result<void> put_boot_source(const BootSourceConfig& b);
    Result<void> put_drive(const DriveConfig& d);
    Result<void> patch_drive(const DriveUpdate& u);
    Result<void> put_network_interface(const NetworkInterfaceConfig& n);
    Result<void> patch_network_interface(const NetworkInterfaceUpdate& u);
    Result<void> put_logger(const LoggerConfig& l);
    Result<void> put_metrics(const PutMetrics& m);
    Result<void> put_cpu_config(const CpuTemplate& t);
    // Every section of `c`: machine, boot source, drives, network interfaces, in that order.
    Result<void> configure(const VmConfig& c);

    Result<void> action(ActionType type);
    Result<void> start() { return action(ActionType::InstanceStart); }
    Result<void> flush_metrics() { return action(ActionType::FlushMetrics); }
    Result<void> send_ctrl_alt_del() { return action(ActionType::SendCtrlAltDel); }
    Result<void> set_vm_state(VmStateChange state);
    Result<void> pause() { return set_vm_state(VmStateChange::Paused); }
    Result<void> resume() { return set_vm_state(VmStateChange::Resumed); }

    Result<void> create_snapshot(const CreateSnapshot& c);
    Result<void> load_snapshot(const LoadSnapshot& l);
    Result<void> record_working_set(const RecordWorkingSet& w);

    // Any request, bounded like the typed ones; a 4xx or 5xx is an Answer, not an error.
    Result<Answer> call(std::string_view method, const std::string& path, std::string body,
                        std::chrono::milliseconds timeout);

  private:
    // `method path` with `body`: nothing on 204, the answer's body on 200, else the call's error.
    Result<std::string> exchange(std::string_view method, const std::string& path, std::string body,
                                 std::chrono::milliseconds timeout);
    Result<void> no_content(std::string_view method, const std::string& path, std::string body,
                            std::chrono::milliseconds timeout);
    // An endpoint's call, its method, path, id and bound from its row (core/endpoints.h).
    template <typename T>
    Result<T> get(const endpoints::Endpoint<T>& e);
    template <typename T>
    Result<void> send(const endpoints::Endpoint<T>& e, const T& body);

    ClientOptions options_;
    std::unique_ptr<std::mutex> calls_;  // one call at a time on the one connection
    std::unique_ptr<httplib::Client> http_;
};

}  // namespace ember::client
