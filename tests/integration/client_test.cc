// ember's client library (api/client) against real ember processes: every endpoint through its
// typed call, before boot (no guest) and after (a ticking test guest, paused, snapshotted and
// restored in another ember), the ember process's start, failure and stop, and the pool of
// ready embers. The client against servers that misbehave is tests/unit/client_hostile_server.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "api/client/ember_process.h"
#include "api/client/ready_pool.h"
#include "tests/support/ember_process.h"
#include "tests/support/netns.h"

namespace ember {
namespace {

using namespace std::chrono_literals;
using client::Client;
using client::EmberProcess;
using testing::kFailsafe;
using testing::TempDir;

std::string guest(const std::string& name) {
    return std::string(EMBER_GUEST_DIR) + "/" + name + ".elf";
}

// An ember in `dir`, its console and log beside its socket, as <name>.console and <name>.log.
client::ProcessOptions options(const TempDir& dir, const std::string& name) {
    client::ProcessOptions o;
    o.ember = EMBER_BINARY;
    o.socket_path = dir.path() + "/" + name + ".sock";
    o.args = {"--serial-out", dir.path() + "/" + name + ".console"};
    o.log_path = dir.path() + "/" + name + ".log";
    o.start_timeout = kFailsafe;
    o.client.timeout = kFailsafe;
    return o;
}

EmberProcess start(const TempDir& dir, const std::string& name) {
    auto e = EmberProcess::start(options(dir, name));
    if (!e) throw std::runtime_error(e.error().message);
    return std::move(*e);
}

// Until the file holds `needle`, or the failsafe passes.
bool wait_for_text(const std::string& path, const std::string& needle) {
    const auto deadline = std::chrono::steady_clock::now() + kFailsafe;
    while (std::chrono::steady_clock::now() < deadline) {
        if (testing::read_file(path).find(needle) != std::string::npos) return true;
        std::this_thread::sleep_for(50ms);
    }
    return false;
}

template <typename T>
void expect_ok(const Result<T>& r) {
    EXPECT_TRUE(r) << r.error().message;
}

void expect_error(const Result<void>& r, const std::string& message) {
    ASSERT_FALSE(r) << "expected: " << message;
    EXPECT_EQ(r.error().message, message);
}

// The ticking guest with a scratch drive and an interface on a tap of this test's own network
// namespace (which the test enters first).
VmConfig ticker_config(const TempDir& dir) {
    EXPECT_TRUE(testing::create_tap("tap-client0"));
    VmConfig c;
    c.machine.mem_size_mib = 16;
    c.boot_source.emplace();
    c.boot_source->kernel_image_path = guest("ticker");
    DriveConfig& d = c.drives.emplace_back();
    d.drive_id = "scratch";
    d.path_on_host = dir.write("scratch.img", std::string(1 << 20, '\0'));
    NetworkInterfaceConfig& n = c.network_interfaces.emplace_back();
    n.iface_id = "eth0";
    n.host_dev_name = "tap-client0";
    n.guest_mac = "06:00:ac:10:00:02";
    return c;
}

// An ember `a` in `dir` running the ticking guest, three ticks in.
EmberProcess boot_ticker(const TempDir& dir) {
    EmberProcess a = start(dir, "a");
    EXPECT_TRUE(a.client().configure(ticker_config(dir)));
    auto started = a.client().start();
    expect_ok(started);
    // A guest that never started never ticks: not worth the failsafe's wait.
    if (started) {
        EXPECT_TRUE(wait_for_text(dir.path() + "/a.console", "tick 3 ok"));
    }
    return a;
}

// A Full snapshot of `e` (paused) as dir/fn.state and dir/fn.mem.
CreateSnapshot snapshot_of(EmberProcess& e, const TempDir& dir) {
    CreateSnapshot create;
    create.snapshot_path = dir.path() + "/fn.state";
    create.mem_file_path = dir.path() + "/fn.mem";
    expect_ok(e.client().create_snapshot(create));
    return create;
}

TEST(Client, EveryCallBeforeBootReachesEmberAndReadsBack) {
    ASSERT_TRUE(testing::enter_new_netns());
    TempDir dir;
    EmberProcess ember = start(dir, "a");
    Client& c = ember.client();

    auto info = c.describe_instance();
    ASSERT_TRUE(info) << info.error().message;
    EXPECT_EQ(info->state, VmState::NotStarted);
    EXPECT_EQ(info->app_name, "ember");
    auto version = c.version();
    ASSERT_TRUE(version) << version.error().message;
    EXPECT_EQ(version->firecracker_version, "1.7.0");

    MachineConfig m;
    m.vcpu_count = 2;
    m.mem_size_mib = 32;
    expect_ok(c.put_machine_config(m));
    MachineConfigPatch patch;
    patch.mem_size_mib = 24;
    expect_ok(c.patch_machine_config(patch));
    auto machine = c.machine_config();
    ASSERT_TRUE(machine) << machine.error().message;
    EXPECT_EQ(machine->vcpu_count, 2u);
    EXPECT_EQ(machine->mem_size_mib, 24u);

    VmConfig wanted = ticker_config(dir);
    expect_ok(c.put_boot_source(*wanted.boot_source));
    expect_ok(c.put_drive(wanted.drives[0]));
    const NetworkInterfaceConfig& n = wanted.network_interfaces[0];
    expect_ok(c.put_network_interface(n));
    LoggerConfig logger;
    logger.level = log::Level::Debug;
    expect_ok(c.put_logger(logger));
    const std::string metrics = dir.path() + "/metrics.json";
    expect_ok(c.put_metrics(PutMetrics{metrics}));
    expect_ok(c.flush_metrics());
    EXPECT_NE(testing::read_file(metrics).find("\"put_api_requests\""), std::string::npos);

    auto config = c.vm_config();
    ASSERT_TRUE(config) << config.error().message;
    EXPECT_EQ(config->machine.mem_size_mib, 24u);
    ASSERT_TRUE(config->boot_source);
    EXPECT_EQ(config->boot_source->kernel_image_path, guest("ticker"));
    ASSERT_EQ(config->drives.size(), 1u);
    EXPECT_EQ(config->drives[0].path_on_host, wanted.drives[0].path_on_host);
    ASSERT_EQ(config->network_interfaces.size(), 1u);
    EXPECT_EQ(config->network_interfaces[0].guest_mac, n.guest_mac);

    // ember's refusals come back as errors naming the call, in ember's (Firecracker's) words.
    DriveConfig missing = wanted.drives[0];
    missing.drive_id = "missing";
    missing.path_on_host = dir.path() + "/no-such.img";
    auto refused = c.put_drive(missing);
    ASSERT_FALSE(refused);
    EXPECT_TRUE(refused.error().message.starts_with("PUT /drives/missing: "))
        << refused.error().message;
    const std::string before_boot =
        "The requested operation is not supported before starting the microVM.";
    DriveUpdate update;
    update.drive_id = "scratch";
    update.path_on_host = wanted.drives[0].path_on_host;
    expect_error(c.patch_drive(update), "PATCH /drives/scratch: " + before_boot);
    NetworkInterfaceUpdate net_update;
    net_update.iface_id = "eth0";
    net_update.rx_rate_limiter = RateLimiterConfig{};
    expect_error(c.patch_network_interface(net_update),
                 "PATCH /network-interfaces/eth0: " + before_boot);
    auto paused = c.pause();
    EXPECT_FALSE(paused);

    auto status = ember.stop();
    ASSERT_TRUE(status) << status.error().message;
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
    EXPECT_NE(::access(ember.socket_path().c_str(), F_OK), 0) << "the socket is left behind";
}

TEST(Client, BootsPausesSnapshotsAndRestoresAGuest) {
    ASSERT_TRUE(testing::enter_new_netns());
    TempDir dir;
    EmberProcess a = boot_ticker(dir);
    ASSERT_FALSE(::testing::Test::HasFailure());
    auto info = a.client().describe_instance();
    ASSERT_TRUE(info) << info.error().message;
    EXPECT_EQ(info->state, VmState::Running);

    DriveUpdate update;
    update.drive_id = "scratch";
    update.path_on_host = dir.write("scratch2.img", std::string(1 << 20, '\0'));
    expect_ok(a.client().patch_drive(update));
    NetworkInterfaceUpdate net_update;
    net_update.iface_id = "eth0";
    net_update.tx_rate_limiter = RateLimiterConfig{
        .bandwidth = TokenBucketConfig{.size = 1 << 20, .one_time_burst = {}, .refill_time = 100},
        .ops = {}};
    expect_ok(a.client().patch_network_interface(net_update));
    expect_ok(a.client().send_ctrl_alt_del());

    expect_ok(a.client().pause());
    info = a.client().describe_instance();
    ASSERT_TRUE(info) << info.error().message;
    EXPECT_EQ(info->state, VmState::Paused);
    const CreateSnapshot create = snapshot_of(a, dir);
    expect_ok(a.client().resume());
    expect_ok(a.stop());

    EmberProcess b = start(dir, "b");
    LoadSnapshot load;
    load.snapshot_path = create.snapshot_path;
    load.mem_backend = MemBackend{MemBackendType::File, create.mem_file_path};
    load.resume_vm = true;
    auto loaded = b.client().load_snapshot(load);
    ASSERT_TRUE(loaded) << loaded.error().message;
    info = b.client().describe_instance();
    ASSERT_TRUE(info) << info.error().message;
    EXPECT_EQ(info->state, VmState::Running);
    ASSERT_TRUE(wait_for_text(dir.path() + "/b.console", " ok\n"));
    expect_ok(b.client().record_working_set(RecordWorkingSet{dir.path() + "/fn.ws"}));
    EXPECT_EQ(::access((dir.path() + "/fn.ws").c_str(), F_OK), 0);
    auto config = b.client().vm_config();
    ASSERT_TRUE(config) << config.error().message;
    ASSERT_EQ(config->drives.size(), 1u);
    EXPECT_EQ(config->drives[0].path_on_host, update.path_on_host);
    ASSERT_EQ(config->network_interfaces.size(), 1u);
    ASSERT_TRUE(config->network_interfaces[0].tx_rate_limiter);
    EXPECT_EQ(config->network_interfaces[0].tx_rate_limiter->bandwidth->size, 1u << 20);
}

TEST(EmberProcessStart, AnEmberThatExitsFailsTheStartWithItsLog) {
    TempDir dir;
    auto o = options(dir, "a");
    o.args.push_back("--no-such-flag");
    auto e = EmberProcess::start(o);
    ASSERT_FALSE(e);
    EXPECT_NE(e.error().message.find("exited with status"), std::string::npos) << e.error().message;
    EXPECT_NE(e.error().message.find("--no-such-flag"), std::string::npos) << e.error().message;
    EXPECT_NE(::access(o.socket_path.c_str(), F_OK), 0);
}

// --ready-fd: the line comes once the VM made ahead has its irqchip, PIT and vCPU 0 (which ember
// logs first), or at once when nothing is made ahead.
TEST(EmberProcessStart, SaysWhenItHasMadeItsVmAhead) {
    TempDir dir;
    auto o = options(dir, "a");
    o.watch_prepared = true;
    auto e = EmberProcess::start(o);
    ASSERT_TRUE(e) << e.error().message;
    expect_ok(e->wait_until_prepared(kFailsafe));
    EXPECT_TRUE(e->prepared());
    EXPECT_EQ(e->prepared_fd(), -1);
    EXPECT_NE(testing::read_file(o.log_path).find("a KVM VM is ready"), std::string::npos);

    auto none = options(dir, "b");
    none.watch_prepared = true;
    none.args.push_back("--no-prepare-vm");
    auto n = EmberProcess::start(none);
    ASSERT_TRUE(n) << n.error().message;
    expect_ok(n->wait_until_prepared(kFailsafe));
    EXPECT_EQ(testing::read_file(none.log_path).find("a KVM VM is ready"), std::string::npos);

    // Not asked for: nothing to wait on.
    auto plain = EmberProcess::start(options(dir, "c"));
    ASSERT_TRUE(plain) << plain.error().message;
    EXPECT_FALSE(plain->prepared());
    EXPECT_FALSE(plain->wait_until_prepared(kFailsafe));
}

// With no time to end on SIGTERM, it is killed, and the socket it leaves is removed.
TEST(EmberProcessStart, AStopThatKillsRemovesTheSocketLeftBehind) {
    TempDir dir;
    auto o = options(dir, "a");
    o.stop_timeout = 0ms;
    auto e = EmberProcess::start(o);
    ASSERT_TRUE(e) << e.error().message;
    auto status = e->stop();
    ASSERT_TRUE(status) << status.error().message;
    EXPECT_NE(::access(o.socket_path.c_str(), F_OK), 0) << "left behind";
}

TEST(EmberProcessStart, AnEmberThatNeverServesIsKilledAndReaped) {
    TempDir dir;
    const std::string pid_file = dir.path() + "/pid";
    const std::string script =
        dir.write("never-serves", "#!/bin/sh\necho $$ > " + pid_file + "\nexec sleep 1000\n");
    ASSERT_EQ(::chmod(script.c_str(), 0755), 0);
    auto o = options(dir, "a");
    o.ember = script;
    o.start_timeout = 300ms;
    auto e = EmberProcess::start(o);
    ASSERT_FALSE(e);
    EXPECT_NE(e.error().message.find("its API was not there within 300 ms"), std::string::npos)
        << e.error().message;
    // Reaped as well as ended: not even a zombie is left, whether or not the script got as far as
    // its pid file.
    EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);
    EXPECT_EQ(errno, ECHILD);
    const std::string pid = testing::read_file(pid_file);
    if (!pid.empty()) {
        EXPECT_EQ(::kill(std::stoi(pid), 0), -1);
        EXPECT_EQ(errno, ESRCH);
    }
}

client::PoolOptions pool_options(const TempDir& dir, size_t size) {
    client::PoolOptions o;
    o.process = options(dir, "pool");
    o.process.socket_path.clear();
    o.socket_dir = dir.path();
    o.name = "ready";
    o.size = size;
    return o;
}

TEST(ReadyPool, KeepsItsEmbersReadyAndReplacesOnesThatDie) {
    TempDir dir;
    auto pool = client::ReadyPool::start(pool_options(dir, 2));
    ASSERT_TRUE(pool) << pool.error().message;
    expect_ok((*pool)->wait_until_full(kFailsafe));
    EXPECT_EQ((*pool)->stats().started, 2u);
    EXPECT_EQ((*pool)->stats().prepared, 2u) << "full means each has made its KVM VM";

    // One dies while it waits: the pool notices and starts another.
    expect_ok(client::stop_ember_at(dir.path() + "/ready-0.sock", kFailsafe));
    expect_ok((*pool)->wait_until_full(kFailsafe));
    auto stats = (*pool)->stats();
    EXPECT_EQ(stats.died_ready, 1u);
    EXPECT_EQ(stats.started, 3u);

    auto taken = (*pool)->take();
    ASSERT_TRUE(taken) << taken.error().message;
    EXPECT_TRUE(taken->prepared());
    auto info = taken->client().describe_instance();
    ASSERT_TRUE(info) << info.error().message;
    EXPECT_EQ(info->state, VmState::NotStarted);
    expect_ok((*pool)->wait_until_full(kFailsafe));
    EXPECT_EQ((*pool)->stats().started, 4u);
}

// The ticker booted, paused and snapshotted as dir/fn.state and dir/fn.mem, its ember gone.
void snapshot_a_ticker(const TempDir& dir) {
    EmberProcess a = boot_ticker(dir);
    ASSERT_FALSE(::testing::Test::HasFailure());
    expect_ok(a.client().pause());
    snapshot_of(a, dir);
}

TEST(ReadyPool, RestoresASnapshotIntoAReadyEmber) {
    ASSERT_TRUE(testing::enter_new_netns());
    TempDir dir;
    ASSERT_NO_FATAL_FAILURE(snapshot_a_ticker(dir));
    auto pool = client::ReadyPool::start(pool_options(dir, 1));
    ASSERT_TRUE(pool) << pool.error().message;
    LoadSnapshot load;
    load.snapshot_path = dir.path() + "/fn.state";
    load.mem_backend = MemBackend{MemBackendType::File, dir.path() + "/fn.mem"};
    load.resume_vm = true;
    auto clone = (*pool)->restore(load);
    ASSERT_TRUE(clone) << clone.error().message;
    auto info = clone->client().describe_instance();
    ASSERT_TRUE(info) << info.error().message;
    EXPECT_EQ(info->state, VmState::Running);
    ASSERT_TRUE(wait_for_text(dir.path() + "/pool.console", " ok\n"));

    load.snapshot_path = dir.path() + "/no-such.state";
    auto failed = (*pool)->restore(load);
    ASSERT_FALSE(failed);
    EXPECT_TRUE(failed.error().message.starts_with("PUT /snapshot/load: "))
        << failed.error().message;
    auto stats = (*pool)->stats();
    EXPECT_EQ(stats.restores, 1u);
    EXPECT_EQ(stats.failed_restores, 1u);
}

// In a network namespace of its own, a ticker snapshotted and pushed into a folder store as
// fn.json (`store` is the store's snapshots' URL), and a pool of one ready ember.
class ReadyPoolFromAStore : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_TRUE(testing::enter_new_netns());
        ASSERT_NO_FATAL_FAILURE(snapshot_a_ticker(dir));
        store = "file://" + dir.path() + "/store/snapshots/";
        auto pushed = testing::run_process(
            {EMBER_SNAPSHOT, "push", "--snapshot-path", dir.path() + "/fn.state", "--mem-file-path",
             dir.path() + "/fn.mem", store + "fn.json"},
            kFailsafe);
        ASSERT_EQ(pushed.exit_code, 0) << pushed.err;
        // Its scratch drive where the host says, as a store's state file chooses no host file.
        std::filesystem::create_directory(drives());
        std::filesystem::create_symlink(dir.path() + "/scratch.img", drives() + "/scratch");
        auto started = client::ReadyPool::start(pool_options(dir, 1));
        ASSERT_TRUE(started) << started.error().message;
        pool = std::move(*started);
    }
    // fn.json restored through ember-uffd, with a cache, its log in dir.
    client::StoreRestore lazily() const {
        client::StoreRestore from;
        from.manifest_url = store + "fn.json";
        from.socket_path = dir.path() + "/fn.uffd";
        from.state_path = dir.path() + "/fetched.state";
        from.cache_dir = dir.path() + "/cache";
        from.drive_root = drives();
        from.writable_drives = {"scratch"};
        from.network_overrides = {{"eth0", "tap-client0"}};
        from.ember_uffd = EMBER_UFFD;
        from.log_path = dir.path() + "/uffd.log";
        return from;
    }
    std::string drives() const { return dir.path() + "/drives"; }
    TempDir dir;
    std::string store;
    std::unique_ptr<client::ReadyPool> pool;
};

// A restore from a store of snapshots (ember-snapshot push): the pool starts ember-uffd for it,
// which fetches the state file, then loads a ready ember through it; the handler ends with the
// ember. A load that names no tap of this host for the snapshot's interface is refused; a manifest
// that is not there is an error with the handler's own words.
TEST_F(ReadyPoolFromAStore, RestoresThroughEmberUffd) {
    client::StoreRestore from = lazily();
    auto clone = pool->restore_from_store(from);
    ASSERT_TRUE(clone) << clone.error().message;
    EXPECT_FALSE(clone->handler.load().working_set_path) << "pushed without a working set";
    auto info = clone->ember.client().describe_instance();
    ASSERT_TRUE(info) << info.error().message;
    EXPECT_EQ(info->state, VmState::Running);
    ASSERT_TRUE(wait_for_text(dir.path() + "/pool.console", " ok\n"));
    (void)clone->ember.stop();
    const int status = clone->handler.wait(kFailsafe);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << status << ": " << testing::read_file(from.log_path);

    // The state from the store names a tap, which is the store's word: a load that does not name
    // this host's for the interface is refused.
    from.network_overrides.clear();
    auto untapped = pool->restore_from_store(from);
    ASSERT_FALSE(untapped);
    EXPECT_NE(untapped.error().message.find("whose tap names are not this host's: name the tap "
                                            "of interface 'eth0'"),
              std::string::npos)
        << untapped.error().message;

    from.manifest_url = store + "nothing.json";
    auto missing = pool->restore_from_store(from);
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().message.find("nothing.json ended: ember-uffd: --manifest"),
              std::string::npos)
        << missing.error().message;
}

// A restore from the snapshot made whole in the host's cache (ember-snapshot view): the pool loads
// a ready ember from the view's files, the File backend, and the guest runs on from its snapshot.
// A wrong pin is an error with ember-snapshot's own words, and nothing is loaded.
TEST_F(ReadyPoolFromAStore, RestoresFromItsViewThroughTheFileBackend) {
    client::StoreView from;
    from.manifest_url = store + "fn.json";
    from.cache_dir = dir.path() + "/cache";
    from.drive_root = drives();
    from.writable_drives = {"scratch"};
    from.network_overrides = {{"eth0", "tap-client0"}};
    from.ember_snapshot = EMBER_SNAPSHOT;
    auto clone = pool->restore_from_view(from);
    if (!testing::takes_user_xattrs(dir.path())) {
        ASSERT_FALSE(clone);
        EXPECT_NE(clone.error().message.find("takes no user xattrs"), std::string::npos)
            << clone.error().message;
        return;
    }
    ASSERT_TRUE(clone) << clone.error().message;
    auto info = clone->client().describe_instance();
    ASSERT_TRUE(info) << info.error().message;
    EXPECT_EQ(info->state, VmState::Running);
    ASSERT_TRUE(wait_for_text(dir.path() + "/pool.console", " ok\n"));
    (void)clone->stop();

    from.manifest_sha256 = std::string(64, '0');
    auto wrong = pool->restore_from_view(from);
    ASSERT_FALSE(wrong);
    EXPECT_NE(wrong.error().message.find("not the pinned"), std::string::npos)
        << wrong.error().message;
    EXPECT_EQ(pool->stats().restores, 1u);
}

// A host's restores of one function: the first, with no view made, lazily through ember-uffd, after
// which the pool makes the view in the background, one maker however many clones come meanwhile;
// the next from the view through the File backend, with no handler beside it. A folder that takes
// no user xattrs takes no view: the maker's failure is counted, with its reason.
TEST_F(ReadyPoolFromAStore, RestoresOnAHostLazilyThenFromTheViewItMadeMeanwhile) {
    const client::StoreRestore lazy = lazily();
    client::StoreView view;
    view.manifest_url = lazy.manifest_url;
    view.cache_dir = lazy.cache_dir;
    view.drive_root = lazy.drive_root;
    view.writable_drives = lazy.writable_drives;
    view.network_overrides = lazy.network_overrides;
    view.ember_snapshot = EMBER_SNAPSHOT;
    const std::string console = dir.path() + "/pool.console";

    auto first = pool->restore_on_host(lazy, view);
    ASSERT_TRUE(first) << first.error().message;
    EXPECT_TRUE(first->handler) << "no view was made before";
    ASSERT_TRUE(wait_for_text(console, " ok\n"));
    // A second clone at once: lazily again where the view is still being made (with no second
    // maker), else from it.
    ASSERT_TRUE(testing::create_tap("tap-client1"));
    client::StoreRestore beside = lazy;
    beside.socket_path = dir.path() + "/beside.uffd";
    beside.state_path = dir.path() + "/beside.state";
    beside.network_overrides = {{"eth0", "tap-client1"}};
    client::StoreView beside_view = view;
    beside_view.network_overrides = beside.network_overrides;
    auto second = pool->restore_on_host(beside, beside_view);
    ASSERT_TRUE(second) << second.error().message;
    expect_ok(pool->wait_for_views(kFailsafe));
    auto stats = pool->stats();
    EXPECT_EQ(stats.views_making, 0u);
    EXPECT_EQ(stats.views_made + stats.views_failed, 1u) << "one maker for the snapshot";
    if (!testing::takes_user_xattrs(dir.path())) {
        EXPECT_EQ(stats.views_failed, 1u);
        EXPECT_NE(stats.last_error.find("takes no user xattrs"), std::string::npos)
            << stats.last_error;
        return;
    }
    EXPECT_EQ(stats.views_made, 1u) << stats.last_error;
    for (auto* clone : {&*first, &*second}) {
        (void)clone->ember.stop();
        if (!clone->handler) continue;
        const int status = clone->handler->wait(kFailsafe);
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    }
    ASSERT_TRUE(first->handler);
    // What the console says from here on is the third clone's: the others have ended.
    ASSERT_EQ(::truncate(console.c_str(), 0), 0);

    auto third = pool->restore_on_host(lazy, view);
    ASSERT_TRUE(third) << third.error().message;
    EXPECT_FALSE(third->handler) << "restored from the view";
    auto info = third->ember.client().describe_instance();
    ASSERT_TRUE(info) << info.error().message;
    EXPECT_EQ(info->state, VmState::Running);
    ASSERT_TRUE(wait_for_text(console, " ok\n"));
    stats = pool->stats();
    EXPECT_EQ(stats.views_made, 1u) << "none made again";
    EXPECT_EQ(stats.views_making, 0u);
    EXPECT_EQ(stats.restores, 3u);
    (void)third->ember.stop();
}

// A view maker that does not end is stopped by the pool's thread at the view's timeout, and
// counted with its reason; the pool starts none again for that snapshot at once.
TEST_F(ReadyPoolFromAStore, AViewMakerPastItsTimeoutIsStoppedAndNotStartedAgainAtOnce) {
    // finds no view, and makes none in ten minutes
    const std::string stuck = dir.write(
        "stuck-ember-snapshot", "#!/bin/sh\n[ \"$1\" = find-view ] && exit 3\nexec sleep 600\n");
    std::filesystem::permissions(stuck, std::filesystem::perms(0755));
    const client::StoreRestore lazy = lazily();
    client::StoreView view;
    view.manifest_url = lazy.manifest_url;
    view.cache_dir = lazy.cache_dir;
    view.drive_root = lazy.drive_root;
    view.writable_drives = lazy.writable_drives;
    view.network_overrides = lazy.network_overrides;
    view.ember_snapshot = stuck;
    view.timeout = std::chrono::milliseconds(300);
    for (int restore = 0; restore < 2; ++restore) {
        auto clone = pool->restore_on_host(lazy, view);
        ASSERT_TRUE(clone) << clone.error().message;
        ASSERT_TRUE(clone->handler);
        expect_ok(pool->wait_for_views(kFailsafe));
        const auto stats = pool->stats();
        EXPECT_EQ(stats.views_making, 0u);
        EXPECT_EQ(stats.views_failed, 1u) << "one maker, not one a restore";
        EXPECT_NE(stats.last_error.find("no end within 300 ms"), std::string::npos)
            << stats.last_error;
        (void)clone->ember.stop();
        const int status = clone->handler->wait(kFailsafe);
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    }
}

// A host agent's own first steps on a taken ember: the pool starts no replacement beside them,
// and an ember whose steps failed is stopped.
TEST(ReadyPool, TakeForHoldsTheReplacementBackUntilTheCallersStepsEnd) {
    TempDir dir;
    auto o = pool_options(dir, 1);
    o.refill_delay = std::chrono::milliseconds(0);
    auto pool = client::ReadyPool::start(o);
    ASSERT_TRUE(pool) << pool.error().message;
    expect_ok((*pool)->wait_until_full(kFailsafe));

    auto taken = (*pool)->take_for([&](EmberProcess& e) -> Result<void> {
        auto info = e.client().describe_instance();
        EMBER_TRY(info);
        EXPECT_EQ(info->state, VmState::NotStarted);
        // A take() with no delay would have the pool full again in this time.
        EXPECT_FALSE((*pool)->wait_until_full(std::chrono::milliseconds(500)))
            << "a replacement started while the caller's steps ran";
        EXPECT_EQ((*pool)->stats().started, 1u);
        return {};
    });
    ASSERT_TRUE(taken) << taken.error().message;
    expect_ok((*pool)->wait_until_full(kFailsafe));
    EXPECT_EQ((*pool)->stats().started, 2u);

    std::string socket;
    auto refused = (*pool)->take_for([&](EmberProcess& e) -> Result<void> {
        socket = e.socket_path();
        return fail("the agent's step refused");
    });
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().message, "the agent's step refused");
    EXPECT_FALSE(std::filesystem::exists(socket)) << "the ember whose steps failed was stopped";
    expect_ok((*pool)->wait_until_full(kFailsafe));
    EXPECT_EQ((*pool)->stats().started, 3u);
}

// A jailed pool: each ember starts under ember-jailer as the jail's ids, in a jail of its own
// named after it; a host agent puts the kernel into the jail of the one it takes, and boots it.
TEST(ReadyPool, KeepsJailedEmbersAndBootsOneThroughItsJail) {
    TempDir dir;
    client::PoolOptions o;
    o.process.ember = EMBER_BINARY;
    o.process.socket_path = "/run/api.sock";
    o.process.console_path = dir.path() + "/console";
    o.process.log_path = dir.path() + "/log";
    o.process.start_timeout = kFailsafe;
    o.process.client.timeout = kFailsafe;
    o.process.jail = client::JailOptions{.jailer = EMBER_JAILER,
                                         .id = {},
                                         .uid = 54321,
                                         .gid = 54321,
                                         .chroot_base_dir = dir.path() + "/jails",
                                         .args = {}};
    o.name = "fn";
    o.size = 1;
    auto pool = client::ReadyPool::start(o);
    ASSERT_TRUE(pool) << pool.error().message;
    // The jailer passes the pool's --ready-fd on (--keep-fd).
    expect_ok((*pool)->wait_until_full(kFailsafe));
    auto ember = (*pool)->take();
    ASSERT_TRUE(ember) << ember.error().message << testing::read_file(o.process.log_path);
    EXPECT_TRUE(ember->prepared());
    const std::string root = dir.path() + "/jails/ember/fn-0/root";
    EXPECT_EQ(ember->jail_root(), root);
    EXPECT_EQ(ember->socket_path(), root + "/run/api.sock");
    std::filesystem::copy_file(guest("hello"), root + "/hello.elf");
    std::filesystem::permissions(root + "/hello.elf", std::filesystem::perms(0644));
    MachineConfig m;
    m.mem_size_mib = 16;
    expect_ok(ember->client().put_machine_config(m));
    BootSourceConfig boot;
    boot.kernel_image_path = "/hello.elf";
    expect_ok(ember->client().put_boot_source(boot));
    auto started = ember->client().start();
    ASSERT_TRUE(started) << started.error().message;
    // The guest prints and resets the VM, which ends ember.
    ASSERT_TRUE(wait_for_text(o.process.console_path, "hello from the test guest\n"));
    auto status = ember->stop();
    ASSERT_TRUE(status) << status.error().message;
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
    // Its replacement is jailed in its own jail.
    expect_ok((*pool)->wait_until_full(kFailsafe));
    EXPECT_TRUE(std::filesystem::exists(dir.path() + "/jails/ember/fn-1/root/run/api.sock"));
    // A store's view is the host's files, out of a jail's sight: refused before anything runs.
    client::StoreView view;
    view.manifest_url = "file://" + dir.path() + "/store/snapshots/fn.json";
    view.cache_dir = dir.path() + "/cache";
    view.ember_snapshot = "/nonexistent/ember-snapshot";
    auto viewed = (*pool)->restore_from_view(view);
    ASSERT_FALSE(viewed);
    EXPECT_NE(viewed.error().message.find("restore_from_view: a jailed ember"), std::string::npos)
        << viewed.error().message;
    auto on_host = (*pool)->restore_on_host({}, view);
    ASSERT_FALSE(on_host);
    EXPECT_NE(on_host.error().message.find("restore_on_host: a jailed ember"), std::string::npos)
        << on_host.error().message;
    EXPECT_EQ((*pool)->stats().failed_restores, 0u) << "no ember was taken";
}

}  // namespace
}  // namespace ember
