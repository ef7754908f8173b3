// The Controller: what ember is between process start and process exit. It owns the VMM thread's
// event loop, termination signals (read by a TerminationWatch, termination_watch.h), the logger and
// metrics sinks, and the VM's phase, one of: configuring (the configuration being built, and a VM
// made ahead of it), running (the Vmm, booted or restored: it owns the configuration from then on),
// exited. As Firecracker's PrebootApiController and RuntimeApiController, each action is for a
// phase.
//
// Other threads (the API server's) reach it two ways only: submit() queues a typed action for the
// VMM thread and waits for its outcome; the getters (config, state) read what the phase's owner
// last published (vmm/machine/published_vm.h), without waiting for the VMM thread.
#pragma once

#include <condition_variable>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <variant>

#include "core/actions.h"
#include "core/base/event_fd.h"
#include "core/base/metrics.h"
#include "core/base/unique_fd.h"
#include "core/event_loop/event_loop.h"
#include "vmm/machine/prepared_vm.h"
#include "vmm/machine/published_vm.h"
#include "vmm/machine/vmm.h"

namespace ember {

struct ControllerOptions {
    std::string instance_id = "anonymous-instance";
    VmmOptions vmm;  // its loop is filled in by the Controller
    // The API's metric groups (running totals) that FlushMetrics writes; set by the API side.
    std::function<std::vector<metrics::Group>()> api_metrics;
    // Whether a failed PUT /snapshot/load ends the process after its answer, as in Firecracker.
    bool exit_on_failed_load = true;
    // Whether run() makes the KVM VM while the API waits for a configuration (prepared_vm.h).
    bool prepare_vm = true;
    // --ready-memory-mib: the guest memory the prepared VM holds in its KVM slot
    // (PreparedVm::memory).
    uint64_t ready_memory_bytes = kReadyMemoryBytes;
    // --ready-fd: written one line ("ready") and closed once ember has made all it makes ahead
    // (the VM's irqchip, PIT and vCPU 0, or nothing when it cannot or need not), so that a host
    // agent knows when a load spends nothing on them. Non-blocking; invalid: none.
    UniqueFd ready_fd;
    // Installed on the VMM thread once the VM runs (booted or restored); null: none (not owned).
    // Before that the thread only configures, as in Firecracker.
    const seccomp::BpfProgram* vmm_filter = nullptr;
};

// The VM's phase, as the Controller holds it: one of these at a time.
namespace phase {
// Before boot: the configuration as the API builds it, and the KVM VM made ahead of it.
struct Configuring {
    ValidVmConfig config;
    std::optional<PreparedVm> prepared;
    bool configured = false;  // a config action succeeded: too late to load a snapshot
};
// Booted or restored: the Vmm owns the configuration from here.
struct Running {
    std::unique_ptr<Vmm> vmm;
    bool confined = false;  // the VMM thread's filter is installed
    bool settled = false;   // what building it touched has gone back (give_back_build_memory)
};
struct Exited {
    VmExitStatus status;
};
}  // namespace phase

class Controller : public ActionSink {
  public:
    // Blocks SIGTERM, SIGINT and SIGHUP in the calling thread for the signalfd: call before any
    // other thread exists, from the thread that will call run().
    static Result<std::unique_ptr<Controller>> create(ControllerOptions options);

    // Any thread: runs `action` on the VMM thread and returns how it went.
    Outcome submit(Action action) override;

    // The VMM thread: handles actions, the VM and signals until the VM ends or a signal arrives.
    VmExitStatus run();
    // Any thread: asks run() to return, e.g. when the API server failed. The VMM thread ends the VM
    // and its loop when it wakes for it.
    void stop(std::string why);

    // Any thread, without waiting for the VMM thread.
    VmConfig config() const override;
    VmState state() const override;
    const std::string& instance_id() const override { return options_.instance_id; }

    // For main, on the VMM thread before run(): apply a whole config as the config file does, and
    // run an action directly (InstanceStart after --config-file, PutMetrics for --metrics-path).
    Outcome apply(ValidVmConfig config);
    Outcome execute_now(const Action& action) { return execute(action); }

    Controller(ControllerOptions options, EventLoop loop, EventFd wake, UniqueFd metrics_timer,
               UniqueFd quiet_timer);
    ~Controller() override;

  private:
    struct Pending {
        Action action;
        std::promise<Outcome> done;
    };

    void handle_wake();
    Outcome execute(const Action& action);
    using Configuring = phase::Configuring;
    using Running = phase::Running;
    using Exited = phase::Exited;
    // The phase's, or null in another phase.
    Configuring* configuring() { return std::get_if<Configuring>(&phase_); }
    Vmm* vmm() {
        auto* r = std::get_if<Running>(&phase_);
        return r ? r->vmm.get() : nullptr;
    }

    // One per action, on the VMM thread.
    Outcome handle(const PutBootSource& a);
    Outcome handle(const PutMachineConfig& a);
    Outcome handle(const PatchMachineConfig& a);
    Outcome handle(const PutCpuConfig& a);
    Outcome handle(const PutDrive& a);
    Outcome handle(const PutNetworkInterface& a);
    Outcome handle(const UpdateDevice& a);
    Outcome handle(const InstanceStart& a);
    Outcome handle(const SendCtrlAltDel& a);
    Outcome handle(const FlushMetrics& a);
    Outcome handle(const SetVmState& a);
    Outcome handle(const PutLogger& a);
    Outcome handle(const PutMetrics& a);
    Outcome handle(const CreateSnapshot& a);
    Outcome handle(const LoadSnapshot& a);
    Outcome handle(const RecordWorkingSet& a);

    Outcome start_instance();
    // The Vmm, started: the phase is running from here.
    void started(std::unique_ptr<Vmm> vmm);
    // Makes a VM ahead while configuring; a host that cannot is told at InstanceStart or load.
    void prepare();
    // Gives the VM made ahead its platform, once the API has been quiet (kQuietBeforePlatform).
    void add_platform();
    // Writes the --ready-fd line, once.
    void announce_ready();
    std::optional<PreparedVm> take_prepared();
    Outcome failed_load(std::string why);
    Outcome confine_vmm_thread();
    void give_back_build_memory();
    bool running_loop_ = false;  // run() has begun
    Outcome write_metrics();
    // The configuring phase, or the error Firecracker gives an action that needs it.
    Result<Configuring*> require_not_started();
    // `static_template`: the request named a cpu_template, which replaces a custom one.
    Outcome set_machine(const MachineConfig& m, bool static_template);
    Result<Vmm*> can_update_devices();
    // A configuration action succeeded with `config`: from now on a snapshot can no longer be
    // loaded.
    Outcome configured(Result<ValidVmConfig> config);

    ControllerOptions options_;
    EventLoop loop_;
    EventFd wake_;
    UniqueFd metrics_timer_;
    UniqueFd quiet_timer_;  // the API has asked nothing of the VMM thread for a while
    UniqueFd metrics_file_;
    metrics::Reporter metrics_reporter_;
    // Firecracker's latencies_us group: how long the VMM thread took for the last of each.
    struct Latencies {
        uint64_t full_create_snapshot = 0, diff_create_snapshot = 0, load_snapshot = 0,
                 pause_vm = 0, resume_vm = 0;
    } latencies_us_;
    uint64_t metrics_fails_ = 0;  // lines not written whole: Firecracker's logger.metrics_fails

    mutable std::mutex mutex_;  // guards the queue and stop_reason_
    std::deque<Pending> queue_;
    std::optional<std::string> stop_reason_;

    // What the API reads: the phase's configuration and state. Before phase_, whose Vmm
    // publishes here until it is destroyed.
    PublishedVm published_;
    std::variant<Configuring, Running, Exited> phase_;  // VMM thread only
    std::optional<std::string> fatal_;                  // VMM thread only: why the process must end
    // Last, so that it is gone before anything it calls into: the termination signals' reader.
    std::unique_ptr<class TerminationWatch> termination_;
};

}  // namespace ember
