#include "vmm/app/controller.h"

#include <fcntl.h>
#include <net/if.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string_view>

#include "core/base/elapsed.h"
#include "core/base/fatal_exit.h"
#include "core/base/give_back_memory.h"
#include "core/base/log.h"
#include "core/base/metrics_groups.h"
#include "core/base/phase_times.h"
#include "core/base/signal_counts.h"
#include "core/base/timer_fd.h"
#include "core/config/config_fields.h"
#include "core/seccomp/install.h"
#include "virtio/net/tap.h"
#include "vmm/app/outside_paths.h"
#include "vmm/app/termination_watch.h"
#include "vmm/app/vm_metrics.h"

namespace ember {
namespace {

constexpr auto kMetricsPeriod = std::chrono::seconds(60);
// How long the API must have asked the VMM thread for nothing before the VM made ahead gets its
// irqchip, PIT and vCPU 0 (prepared_vm.h): a client that is configuring, or that loads a snapshot
// as soon as the socket appears, gets its memory registered before the irqchip, while an ember kept
// waiting is ready this long after its start (and, on hosts with the grace period, ~10 ms more).
constexpr auto kQuietBeforePlatform = std::chrono::milliseconds(50);

}  // namespace

Result<std::unique_ptr<Controller>> Controller::create(ControllerOptions options) {
    auto loop = EventLoop::create();
    EMBER_TRY(loop);
    auto wake = EventFd::create();
    EMBER_TRY(wake);
    sigset_t set;
    sigemptyset(&set);
    for (int sig : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&set, sig);
    ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
    UniqueFd sfd(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!sfd.valid()) return fail_errno("signalfd");
    UniqueFd tfd(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
    UniqueFd quiet(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
    if (!tfd.valid() || !quiet.valid()) return fail_errno("timerfd_create");
    const int timer_fd = tfd.get(), quiet_fd = quiet.get();
    const seccomp::BpfProgram* filter = options.vmm_filter;
    auto c = std::make_unique<Controller>(std::move(options), std::move(*loop), std::move(*wake),
                                          std::move(tfd), std::move(quiet));
    Controller* self = c.get();
    EMBER_TRY(c->loop_.add(c->wake_.fd(), EPOLLIN, [self](uint32_t) { self->handle_wake(); }));
    // A thread dying of a fatal signal hands its exit to this one (core/base/fatal_exit.h).
    if (const int fd = fatal_exit::notify_fd(); fd >= 0)
        EMBER_TRY(c->loop_.add(fd, EPOLLIN, [](uint32_t) { fatal_exit::finish(); }));
    // Read on a thread of their own, which ends the process if the VMM thread cannot.
    TerminationHooks hooks;
    hooks.on_signal = [self](int signo) {
        signal_counts::count(signo);
        self->stop(strsignal(signo));
    };
    hooks.ended = [self] { return self->published_.state() == VmState::Exited; };
    hooks.on_failure = [self](const std::string& why) { self->stop("the signal thread: " + why); };
    auto watch = TerminationWatch::start(std::move(sfd), std::move(hooks), filter);
    EMBER_TRY(watch);
    c->termination_ = std::move(*watch);
    EMBER_TRY(c->loop_.add(timer_fd, EPOLLIN, [self](uint32_t) {
        uint64_t expirations;
        [[maybe_unused]] ssize_t n = ::read(self->metrics_timer_.get(), &expirations, 8);
        (void)self->write_metrics();
    }));
    EMBER_TRY(c->loop_.add(quiet_fd, EPOLLIN, [self](uint32_t) {
        uint64_t expirations;
        [[maybe_unused]] ssize_t n = ::read(self->quiet_timer_.get(), &expirations, 8);
        self->add_platform();
    }));
    return c;
}

Controller::Controller(ControllerOptions options, EventLoop loop, EventFd wake,
                       UniqueFd metrics_timer, UniqueFd quiet_timer)
    : options_(std::move(options)),
      loop_(std::move(loop)),
      wake_(std::move(wake)),
      metrics_timer_(std::move(metrics_timer)),
      quiet_timer_(std::move(quiet_timer)) {
    options_.vmm.loop = &loop_;
    options_.vmm.published = &published_;
}

Controller::~Controller() = default;

Outcome Controller::submit(Action action) {
    std::future<Outcome> done;
    {
        std::lock_guard lock(mutex_);
        if (stop_reason_ || published_.state() == VmState::Exited)
            return fail("the microVM is shutting down");
        queue_.push_back(Pending{std::move(action), {}});
        done = queue_.back().done.get_future();
    }
    wake_.signal();
    return done.get();
}

void Controller::stop(std::string why) {
    {
        std::lock_guard lock(mutex_);
        if (!stop_reason_) stop_reason_ = std::move(why);
    }
    // The VM and the loop belong to the VMM thread: it acts on the reason when it wakes.
    wake_.signal();
}

void Controller::handle_wake() {
    wake_.consume();
    std::deque<Pending> work;
    std::optional<std::string> stopping;
    {
        std::lock_guard lock(mutex_);
        work.swap(queue_);
        stopping = stop_reason_;
    }
    if (stopping) {
        for (auto& p : work) p.done.set_value(fail("the microVM is shutting down"));
        if (Vmm* vmm = this->vmm()) vmm->request_exit(ExitReason::Signal, *stopping);
        loop_.stop();
        return;
    }
    for (auto& p : work) {
        p.done.set_value(execute(p.action));
        // Once the client has its answer: installing the filter takes 130-220 us here, which a
        // load or InstanceStart need not wait for. Nothing else runs on this thread meanwhile.
        // The memory goes back first: finding the stack's pages takes mincore, which the filter
        // need not allow.
        if (auto* r = std::get_if<Running>(&phase_); r && !r->settled) {
            give_back_build_memory();
            if (!r->confined) (void)confine_vmm_thread();
        }
    }
    if (auto* c = configuring(); c && c->prepared && !c->prepared->has_platform())
        arm_timer(quiet_timer_.get(), kQuietBeforePlatform);
}

VmConfig Controller::config() const {
    return published_.config();
}

VmState Controller::state() const {
    return published_.state();
}

Outcome Controller::apply(ValidVmConfig config) {
    for (const auto& n : config->network_interfaces)
        if (auto warning = guest_mac_warning(n)) log::warn(*warning);
    return configured(std::move(config));
}

Result<Controller::Configuring*> Controller::require_not_started() {
    Configuring* c = configuring();
    if (c == nullptr)
        return fail("The requested operation is not supported after starting the microVM.");
    return c;
}

Outcome Controller::configured(Result<ValidVmConfig> config) {
    EMBER_TRY(config);
    auto c = require_not_started();
    EMBER_TRY(c);
    (*c)->configured = true;
    (*c)->config = std::move(*config);
    published_.publish((*c)->config, VmState::NotStarted);
    return {};
}

Outcome Controller::execute(const Action& action) {
    return std::visit([this](const auto& a) { return handle(a); }, action);
}

Outcome Controller::handle(const PutBootSource& a) {
    auto conf = require_not_started();
    EMBER_TRY(conf);
    // Firecracker's texts first, which scripts grep for; then which field and file.
    EMBER_TRY(check_readable("boot-source.kernel_image_path", a.config.kernel_image_path),
              "The kernel file cannot be opened");
    if (a.config.initrd_path)
        if (auto r = check_readable("boot-source.initrd_path", *a.config.initrd_path); !r)
            return fail(
                "The initrd file cannot be opened due to invalid path or invalid permissions. " +
                r.error().message);
    VmConfig c = (*conf)->config;
    c.boot_source = a.config;
    return configured(ValidVmConfig::check(std::move(c)));
}

Outcome Controller::handle(const PutMachineConfig& a) {
    return set_machine(a.config, a.config.cpu_template.has_value());
}

Outcome Controller::handle(const PatchMachineConfig& a) {
    auto conf = require_not_started();
    EMBER_TRY(conf);
    return set_machine(config::patched((*conf)->config->machine, a.patch),
                       a.patch.cpu_template.has_value());
}

// As in Firecracker, the last of a static template (machine-config's cpu_template) and a custom
// one is the one a boot uses; and a template alone, not being a boot resource, leaves a snapshot
// load allowed.
Outcome Controller::handle(const PutCpuConfig& a) {
    auto conf = require_not_started();
    EMBER_TRY(conf);
    VmConfig c = (*conf)->config;
    c.cpu_config = a.config;
    auto valid = ValidVmConfig::check(std::move(c));
    EMBER_TRY(valid);
    (*conf)->config = std::move(*valid);
    published_.publish((*conf)->config, VmState::NotStarted);
    return {};
}

Outcome Controller::set_machine(const MachineConfig& m, bool static_template) {
    auto conf = require_not_started();
    EMBER_TRY(conf);
    VmConfig c = (*conf)->config;
    c.machine = m;
    if (static_template) c.cpu_config.reset();  // the static template ("None") came last
    return configured(ValidVmConfig::check(std::move(c)));
}

// The whole configuration with the device is checked first (its values, a second root or a
// reused id, tap or MAC), then what it names on the host, as Firecracker's builders do.
Outcome Controller::handle(const PutDrive& a) {
    auto conf = require_not_started();
    EMBER_TRY(conf);
    VmConfig trial = (*conf)->config;
    std::erase_if(trial.drives, [&](const auto& d) { return d.drive_id == a.config.drive_id; });
    trial.drives.push_back(a.config);
    auto valid = ValidVmConfig::check(std::move(trial));
    EMBER_TRY(valid);
    EMBER_TRY(check_readable("drive '" + a.config.drive_id + "': path_on_host",
                             a.config.path_on_host, FileKinds::RegularOrBlockDevice),
              "Unable to create the virtio block device");
    return configured(std::move(valid));
}

Outcome Controller::handle(const PutNetworkInterface& a) {
    auto conf = require_not_started();
    EMBER_TRY(conf);
    VmConfig trial = (*conf)->config;
    std::erase_if(trial.network_interfaces,
                  [&](const auto& n) { return n.iface_id == a.config.iface_id; });
    trial.network_interfaces.push_back(a.config);
    auto valid = ValidVmConfig::check(std::move(trial));
    EMBER_TRY(valid);
    if (::if_nametoindex(a.config.host_dev_name.c_str()) == 0)
        return fail("Could not create the network device: network interface '" + a.config.iface_id +
                    "': tap '" + a.config.host_dev_name + "' does not exist");
    // Opened once and let go, as Firecracker opens it here: a tun, a multi-queue tap or one another
    // process holds is refused now, not at InstanceStart.
    EMBER_TRY(virtio::Tap::open(a.config.host_dev_name),
              "Could not create the network device: network interface '" + a.config.iface_id + "'");
    EMBER_TRY(configured(std::move(valid)));
    if (auto warning = guest_mac_warning(a.config)) log::warn(*warning);
    return {};
}

Outcome Controller::handle(const UpdateDevice& a) {
    auto vmm = can_update_devices();
    EMBER_TRY(vmm);
    return (*vmm)->update_device(a);
}

// Firecracker updates devices of a VM that runs or is paused; before boot, PUT them again.
Result<Vmm*> Controller::can_update_devices() {
    Vmm* v = vmm();
    if (v == nullptr)
        return fail("The requested operation is not supported before starting the microVM.");
    if (v->state() == VmState::Exited) return fail("the microVM has exited");
    return v;
}

Outcome Controller::handle(const InstanceStart&) {
    return start_instance();
}

Outcome Controller::handle(const SendCtrlAltDel&) {
    Vmm* v = vmm();
    if (v == nullptr || v->state() == VmState::Exited)
        return fail("SendCtrlAltDel: the microVM is not running");
    EMBER_TRY(v->send_ctrl_alt_del(), "SendCtrlAltDel");
    return {};
}

Outcome Controller::handle(const FlushMetrics&) {
    return write_metrics();
}

Outcome Controller::handle(const SetVmState& a) {
    Vmm* v = vmm();
    if (v == nullptr)
        return fail("The requested operation is not supported before starting the microVM.");
    // As in Firecracker, asking for the state the VM is in is a success: SDK retries and "make
    // sure it is paused" logic rely on it.
    const auto start = std::chrono::steady_clock::now();
    if (a.paused()) {
        if (v->state() == VmState::Paused) return {};
        if (v->state() != VmState::Running) return fail("the microVM is not running");
        EMBER_TRY(v->pause());
        latencies_us_.pause_vm = micros_since(start);
    } else {
        if (v->state() == VmState::Running) return {};
        if (v->state() != VmState::Paused) return fail("the microVM is not paused");
        v->resume();
        latencies_us_.resume_vm = micros_since(start);
    }
    return {};
}

Outcome Controller::handle(const PutLogger& a) {
    EMBER_TRY(require_not_started());
    if (a.config.log_path) {
        auto sink = open_sink("logger.log_path", *a.config.log_path, 0);
        EMBER_TRY(sink);
        log::set_fd(sink->get());
    }
    if (a.config.level) log::set_level(*a.config.level);
    if (a.config.show_level) log::set_show_level(*a.config.show_level);
    if (a.config.show_log_origin) log::set_show_origin(*a.config.show_log_origin);
    return {};
}

Outcome Controller::handle(const PutMetrics& a) {
    EMBER_TRY(require_not_started());
    if (metrics_file_.valid()) return fail("metrics: the metrics system is already configured");
    auto sink = open_sink("metrics.metrics_path", a.metrics_path, O_CREAT);
    EMBER_TRY(sink);
    metrics_file_ = std::move(*sink);
    arm_timer(metrics_timer_.get(), kMetricsPeriod, kMetricsPeriod);
    return {};
}

Outcome Controller::handle(const CreateSnapshot& a) {
    Vmm* v = vmm();
    if (v == nullptr || v->state() != VmState::Paused)
        return fail(
            "snapshot/create: the microVM must be paused first (PATCH /vm {\"state\": "
            "\"Paused\"})");
    const auto start = std::chrono::steady_clock::now();
    EMBER_TRY(v->save_snapshot(a.snapshot_path, a.mem_file_path, a.diff()), "snapshot/create");
    (a.diff() ? latencies_us_.diff_create_snapshot : latencies_us_.full_create_snapshot) =
        micros_since(start);
    return {};
}

Outcome Controller::handle(const LoadSnapshot& a) {
    const Configuring* c = configuring();
    if (c == nullptr || c->configured)
        return fail(
            "Loading a microVM snapshot not allowed after configuring boot-specific resources.");
    const auto start = std::chrono::steady_clock::now();
    if (options_.vmm.phases) options_.vmm.phases->restart("PUT /snapshot/load");
    auto vmm = Vmm::restore(a, options_.vmm, take_prepared());
    if (!vmm) return failed_load("Failed to restore from snapshot: " + vmm.error().message);
    if (auto r = (*vmm)->start(!a.resume_vm); !r)
        return failed_load("Failed to resume microVM: " + r.error().message);
    started(std::move(*vmm));
    latencies_us_.load_snapshot = micros_since(start);
    return {};
}

Outcome Controller::handle(const RecordWorkingSet& a) {
    Vmm* v = vmm();
    if (v == nullptr)
        return fail(
            "snapshot/working-set: no microVM: a working set records what a VM restored from a "
            "snapshot touched after its load");
    const auto start = std::chrono::steady_clock::now();
    auto counts = v->record_working_set(a.working_set_path);
    EMBER_TRY(counts, "snapshot/working-set");
    log::info("snapshot/working-set: " + std::to_string(counts->written_pages) + " written and " +
              std::to_string(counts->read_pages) + " read pages in " +
              std::to_string(counts->runs) + " runs, to " + a.working_set_path + " in " +
              std::to_string(micros_since(start)) + " us");
    return {};
}

// Firecracker's clients expect a process whose load failed to exit after answering: it may be
// half-built. --serve-after-failed-load keeps it serving instead (ember builds nothing it keeps
// before the load succeeds).
Outcome Controller::failed_load(std::string why) {
    if (options_.exit_on_failed_load) {
        fatal_ = why;
        loop_.stop();
    } else {
        prepare();
    }
    return fail(std::move(why));
}

void Controller::prepare() {
    Configuring* c = configuring();
    if (!options_.prepare_vm || c == nullptr || c->prepared) return;
    auto prepared = prepare_vm(options_.vmm.kvm_path);
    if (!prepared) {
        log::info("no KVM VM made ahead of the configuration: " + prepared.error().message);
        announce_ready();  // nothing more will be made
        return;
    }
    c->prepared = std::move(*prepared);
    arm_timer(quiet_timer_.get(), kQuietBeforePlatform);
}

std::optional<PreparedVm> Controller::take_prepared() {
    Configuring* c = configuring();
    return c ? std::exchange(c->prepared, std::nullopt) : std::nullopt;
}

void Controller::add_platform() {
    Configuring* c = configuring();
    if (c == nullptr || !c->prepared || c->prepared->has_platform()) return;
    const auto start = std::chrono::steady_clock::now();
    if (auto r = ember::add_platform(*c->prepared, options_.ready_memory_bytes); !r) {
        log::info("no KVM VM made ahead of the configuration: " + r.error().message);
        c->prepared.reset();
    } else {
        // Here, on the thread and at the depth of the event loop that the load runs at.
        touch_ahead();
        log::info(
            "a KVM VM is ready for InstanceStart or PUT /snapshot/load (its irqchip, PIT and "
            "vCPU 0 made, and what the load touches first touched, in " +
            std::to_string(micros_since(start)) + " us)");
    }
    announce_ready();
}

void Controller::announce_ready() {
    if (!options_.ready_fd.valid()) return;
    constexpr std::string_view kLine = "ready\n";
    if (::write(options_.ready_fd.get(), kLine.data(), kLine.size()) < 0)
        log::warn(std::string("--ready-fd: ") + std::strerror(errno));
    options_.ready_fd.reset();
}

Outcome Controller::start_instance() {
    auto c = require_not_started();
    EMBER_TRY(c);
    if (!(*c)->config->boot_source)
        return fail("boot-source: no kernel configured (PUT /boot-source first)");
    // A start from --config-file is timed from main; one the API asks for, from its request.
    if (options_.vmm.phases && running_loop_) options_.vmm.phases->restart("InstanceStart");
    auto vmm = Vmm::create((*c)->config, options_.vmm, take_prepared());
    if (vmm) {
        // A VM that does not start goes before another is made.
        if (auto r = (*vmm)->start(); !r) vmm = std::unexpected(r.error());
    }
    if (!vmm) {
        prepare();  // for an InstanceStart sent again once the configuration is fixed
        return std::unexpected(std::move(vmm.error()));
    }
    started(std::move(*vmm));
    return {};
}

// The configuration is the Vmm's from here (it published what runs: a drive's io_engine may have
// fallen back to Sync, a restore's is the snapshot's).
void Controller::started(std::unique_ptr<Vmm> vmm) {
    phase_ = Running{std::move(vmm)};
    announce_ready();  // nothing is made ahead any more
}

// A VMM thread that cannot be confined must not run a guest: the VM ends. A VM started before
// run() (from --config-file) is confined when run() begins: by then the API's thread exists, and
// it must not inherit the VMM thread's filter.
Outcome Controller::confine_vmm_thread() {
    auto* running = std::get_if<Running>(&phase_);
    if (options_.vmm_filter == nullptr || !running_loop_ || running == nullptr) return {};
    running->confined = true;
    if (auto r = seccomp::install(*options_.vmm_filter, seccomp::ThreadKind::Vmm); !r) {
        fatal_ = r.error().message;
        loop_.stop();
        return std::unexpected(std::move(r.error()));
    }
    return {};
}

// Building or restoring a VM frees far more than it keeps (the state file, its decoded sections)
// and runs deeper than serving it does: once the VM has started, on this thread (the process's
// first, whose stack that is), both go back to the kernel. In a restored clone (perf/density)
// that took its heap from 280 to 196 KiB and its stack from 52 to 24.
void Controller::give_back_build_memory() {
    auto* running = std::get_if<Running>(&phase_);
    if (running == nullptr || running->settled) return;
    running->settled = true;
    give_back_freed_heap();
    give_back_stack_below_here();
    if (options_.vmm.phases) log::info(options_.vmm.phases->describe());
}

Outcome Controller::write_metrics() {
    if (!metrics_file_.valid())
        return fail("FlushMetrics: the metrics system is not configured: PUT /metrics first");
    auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::system_clock::now().time_since_epoch());
    std::vector<metrics::Group> groups;
    if (options_.api_metrics) groups = options_.api_metrics();
    using metrics::Field;
    const auto& l = latencies_us_;
    groups.push_back({"latencies_us",
                      {{"vmm_full_create_snapshot", l.full_create_snapshot, Field::Kind::Value},
                       {"vmm_diff_create_snapshot", l.diff_create_snapshot, Field::Kind::Value},
                       {"vmm_load_snapshot", l.load_snapshot, Field::Kind::Value},
                       {"vmm_pause_vm", l.pause_vm, Field::Kind::Value},
                       {"vmm_resume_vm", l.resume_vm, Field::Kind::Value}}});
    groups.push_back(
        {"logger", {{"metrics_fails", metrics_fails_}, {"missed_log_count", log::missed_lines()}}});
    groups.push_back({"seccomp", {{"num_faults", seccomp::refused_file_lookups()}}});
    groups.push_back(signal_counts::metrics_group());
    groups.push_back({"vmm", {{"device_events", loop_.events_handled()}}});
    if (const Vmm* v = vmm())
        for (auto& g : vm_metrics(*v)) groups.push_back(std::move(g));
    std::string line = metrics_reporter_.line(static_cast<uint64_t>(now.count()),
                                              metrics::with_firecracker_groups(std::move(groups)));
    if (::write(metrics_file_.get(), line.data(), line.size()) !=
        static_cast<ssize_t>(line.size())) {
        ++metrics_fails_;
        return fail("FlushMetrics: " + std::string(std::strerror(errno)));
    }
    return {};
}

VmExitStatus Controller::run() {
    running_loop_ = true;
    // After the API is up, so that its socket appears no later for it; a request that needs the
    // VMM thread meanwhile waits for the few hundred microseconds this takes.
    prepare();
    if (auto* c = configuring(); c == nullptr || !c->prepared) announce_ready();
    give_back_build_memory();  // before the filter, as in handle_wake
    const bool confined = vmm() == nullptr || confine_vmm_thread().has_value();
    if (confined) {
        if (auto r = loop_.run(); !r) stop(r.error().message);
    }
    std::deque<Pending> left;
    {
        std::lock_guard lock(mutex_);
        if (!stop_reason_) stop_reason_ = "the microVM ended";
        left.swap(queue_);
    }
    for (auto& p : left) p.done.set_value(fail("the microVM is shutting down"));
    VmExitStatus status{ExitReason::Signal, *stop_reason_};
    if (fatal_) status = {ExitReason::Error, *fatal_};
    // Unless the VM ended first, it ends for the reason the loop did.
    if (Vmm* v = vmm()) {
        v->request_exit(status.reason, status.detail);
        status = v->finish();
    }
    published_.publish(VmState::Exited);
    if (metrics_file_.valid()) (void)write_metrics();
    phase_ = Exited{status};
    // The VM and its devices have ended: what is left of the exit waits on nothing.
    if (termination_) termination_->disarm();
    return status;
}

}  // namespace ember
