// Snapshot and restore through the API, across processes: a ticking guest paused in one ember
// goes on, memory intact, in another; and every bad snapshot file is a clear 400.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/kvm/kvm.h"
#include "snapshot/format.h"
#include "snapshot/machine_state.h"
#include "snapshot/working_set.h"
#include "tests/support/ember_process.h"
#include "tests/support/tracepoint_counter.h"
#include "tests/support/uds_http.h"
#include "tests/support/vcpu_threads.h"

namespace ember::testing {
namespace {

using namespace std::chrono_literals;

struct Ember {
    // In `cwd`, when given, where relative paths in its configuration resolve.
    explicit Ember(const std::vector<std::string>& extra = {}, const std::string& cwd = "") {
        sock = dir.path() + "/api.sock";
        console = dir.path() + "/console";
        int devnull = ::open("/dev/null", O_RDWR);
        std::vector<std::string> argv = {EMBER_BINARY, "--api-sock", sock,   "--serial-out",
                                         console,      "--level",    "Error"};
        argv.insert(argv.end(), extra.begin(), extra.end());
        pid = spawn(argv, devnull, devnull, devnull, cwd);
        ::close(devnull);
        auto c = UdsHttpClient::connect(sock);
        EXPECT_TRUE(c);
        client.emplace(std::move(*c));
    }
    ~Ember() { kill(SIGKILL); }
    void kill(int sig) {
        if (pid <= 0) return;
        ::kill(pid, sig);
        ::waitpid(pid, nullptr, 0);
        pid = -1;
    }
    HttpReply call(const std::string& method, const std::string& path,
                   const std::string& body = "") {
        auto r = client->request(method, path, body);
        EXPECT_TRUE(r) << r.error().message;
        return r ? *r : HttpReply{};
    }
    std::string output() const {
        std::ifstream in(console);
        return std::string(std::istreambuf_iterator<char>(in), {});
    }
    // Waits until the console output satisfies `done`; false after kFailsafe.
    template <typename Pred>
    bool wait_until(Pred done) const {
        const auto deadline = std::chrono::steady_clock::now() + kFailsafe;
        while (std::chrono::steady_clock::now() < deadline) {
            if (done(output())) return true;
            std::this_thread::sleep_for(100ms);
        }
        return done(output());
    }
    bool wait_for(const std::string& needle) const {
        return wait_until(
            [&](const std::string& out) { return out.find(needle) != std::string::npos; });
    }
    TempDir dir;
    std::string sock, console;
    pid_t pid = -1;
    std::optional<UdsHttpClient> client;
};

// Whether what one process printed before a snapshot and another after restoring it read as one
// stream: "<prefix>1 ok", "<prefix>2 ok", ... with no line missing, repeated or changed, where
// the last line may be unfinished. A pause can land in the middle of a line (the UART takes a
// byte per exit), so the restored guest may finish a line the first process began.
::testing::AssertionResult one_unbroken_stream(const std::string& before, const std::string& after,
                                               const std::string& prefix) {
    std::string joined = before + after;
    size_t start = 0;
    int n = 0;
    for (size_t end; (end = joined.find('\n', start)) != std::string::npos; start = end + 1) {
        std::string line = joined.substr(start, end - start);
        if (line != prefix + std::to_string(++n) + " ok")
            return ::testing::AssertionFailure()
                   << "line " << n << " is '" << line << "'\n--- before the snapshot:\n"
                   << before << "\n--- after the restore:\n"
                   << after;
    }
    return ::testing::AssertionSuccess() << n << " lines";
}

// Complete lines in `out`.
int lines_in(const std::string& out) {
    return static_cast<int>(std::count(out.begin(), out.end(), '\n'));
}

// Sizes a one-vCPU, 32 MiB microVM and points it at a test guest: what every test here boots.
::testing::AssertionResult configure(Ember& e, const std::string& guest,
                                     bool track_dirty_pages = false) {
    auto machine = e.call("PUT", "/machine-config",
                          std::string(R"({"vcpu_count": 1, "mem_size_mib": 32)") +
                              (track_dirty_pages ? R"(, "track_dirty_pages": true})" : "}"));
    if (machine.status != 204)
        return ::testing::AssertionFailure()
               << "PUT /machine-config: " << machine.status << " " << machine.body;
    auto boot =
        e.call("PUT", "/boot-source",
               R"({"kernel_image_path": ")" + std::string(EMBER_GUEST_DIR) + "/" + guest + "\"}");
    if (boot.status != 204)
        return ::testing::AssertionFailure()
               << "PUT /boot-source: " << boot.status << " " << boot.body;
    return ::testing::AssertionSuccess();
}

// Gives the guest `disk` as its drive "data", read-write.
::testing::AssertionResult attach_disk(Ember& e, const std::string& disk) {
    auto r = e.call(
        "PUT", "/drives/data",
        R"({"drive_id": "data", "path_on_host": ")" + disk + R"(", "is_root_device": false})");
    if (r.status != 204)
        return ::testing::AssertionFailure() << "PUT /drives/data: " << r.status << " " << r.body;
    return ::testing::AssertionSuccess();
}

class Snapshot : public ::testing::Test {
  protected:
    // Boots the ticker, lets it tick, pauses it and snapshots it; returns what it printed, all
    // of which is on the console once the pause is answered.
    std::string snapshot_a_ticking_guest() {
        Ember a;
        EXPECT_TRUE(configure(a, "ticker.elf"));
        EXPECT_EQ(a.call("PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
        EXPECT_TRUE(a.wait_for("tick 3 ok")) << a.output();
        auto early = a.call("PUT", "/snapshot/create", create_body());
        EXPECT_EQ(early.status, 400);
        EXPECT_NE(early.body.find("must be paused"), std::string::npos) << early.body;
        EXPECT_EQ(a.call("PATCH", "/vm", R"({"state": "Paused"})").status, 204);
        std::string printed = a.output();
        auto created = a.call("PUT", "/snapshot/create", create_body());
        EXPECT_EQ(created.status, 204) << created.body;
        a.kill(SIGKILL);  // the original is gone: nothing is shared but the files
        EXPECT_EQ(a.output(), printed) << "nothing is printed while paused";
        return printed;
    }
    std::string create_body() const {
        return R"({"snapshot_type": "Full", "snapshot_path": ")" + state +
               R"(", "mem_file_path": ")" + mem + "\"}";
    }
    std::string load_body(bool resume, const std::string& state_path,
                          const std::string& mem_path) const {
        return R"({"snapshot_path": ")" + state_path +
               R"(", "mem_backend": {"backend_type": "File", "backend_path": ")" + mem_path +
               R"("}, "resume_vm": )" + (resume ? "true" : "false") + "}";
    }

    TempDir files;
    std::string state = files.path() + "/vm.state", mem = files.path() + "/vm.mem";
};

TEST_F(Snapshot, RestoredGuestContinuesWhereItWasInANewProcess) {
    std::string before = snapshot_a_ticking_guest();
    ASSERT_GE(lines_in(before), 3);
    Ember b;
    auto loaded = b.call("PUT", "/snapshot/load", load_body(true, state, mem));
    ASSERT_EQ(loaded.status, 204) << loaded.body;
    EXPECT_NE(b.call("GET", "/").body.find("\"state\":\"Running\""), std::string::npos);
    ASSERT_TRUE(b.wait_until([](const std::string& out) { return lines_in(out) >= 2; }))
        << b.output();
    // Goes on from where it was, memory intact, without booting again.
    EXPECT_TRUE(one_unbroken_stream(before, b.output(), "tick "));

    // A second restore from the same files works as well: they are only read.
    Ember c;
    const std::string metrics = files.path() + "/metrics.json";
    ASSERT_EQ(c.call("PUT", "/metrics", R"({"metrics_path": ")" + metrics + "\"}").status, 204);
    ASSERT_EQ(c.call("PUT", "/snapshot/load", load_body(false, state, mem)).status, 204);
    EXPECT_NE(c.call("GET", "/").body.find("\"state\":\"Paused\""), std::string::npos);
    EXPECT_EQ(c.output(), "") << "paused until resumed";
    EXPECT_EQ(c.call("PATCH", "/vm", R"({"state": "Resumed"})").status, 204);
    ASSERT_TRUE(c.wait_until([](const std::string& out) { return lines_in(out) >= 2; }))
        << c.output();
    EXPECT_TRUE(one_unbroken_stream(before, c.output(), "tick "));

    // Firecracker's latencies_us: what the load took, and nothing for what never ran here.
    ASSERT_EQ(c.call("PUT", "/actions", R"({"action_type": "FlushMetrics"})").status, 204);
    std::ifstream m(metrics);
    std::string line;
    ASSERT_TRUE(std::getline(m, line));
    EXPECT_EQ(line.find("\"vmm_load_snapshot\":0,"), std::string::npos) << line;
    EXPECT_NE(line.find("\"vmm_load_snapshot\":"), std::string::npos) << line;
    EXPECT_NE(line.find("\"vmm_full_create_snapshot\":0,"), std::string::npos) << line;
}

// VMGenID: each clone of one snapshot gets its own generation ID and is told through the Generic
// Event Device's interrupt (GSI 3), so guests can reseed what clones would otherwise share.
TEST_F(Snapshot, EveryRestoreGetsANewGenerationIdAndTheInterruptThatAnnouncesIt) {
    auto genid_line = [](const std::string& out, size_t nth) {
        size_t at = 0;
        for (size_t i = 0; i <= nth; ++i) {
            at = out.find("genid 0x", i == 0 ? 0 : at + 1);
            if (at == std::string::npos) return std::string();
        }
        size_t end = out.find('\n', at);
        return end == std::string::npos ? std::string() : out.substr(at, end - at);
    };
    std::string original;
    {
        Ember a;
        ASSERT_TRUE(configure(a, "generation_id.elf"));
        ASSERT_EQ(a.call("PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
        ASSERT_TRUE(a.wait_until([&](const std::string& out) {
            return !genid_line(out, 0).empty();
        })) << a.output();
        original = genid_line(a.output(), 0);
        ASSERT_EQ(a.call("PATCH", "/vm", R"({"state": "Paused"})").status, 204);
        ASSERT_EQ(a.call("PUT", "/snapshot/create", create_body()).status, 204);
        a.kill(SIGKILL);
    }
    EXPECT_NE(original, "genid 0x00000000000000000000000000000000") << "a booted VM has an ID";
    std::vector<std::string> clones;
    for (int i = 0; i < 2; ++i) {
        Ember clone;
        ASSERT_EQ(clone.call("PUT", "/snapshot/load", load_body(true, state, mem)).status, 204);
        ASSERT_TRUE(clone.wait_until([&](const std::string& out) {
            return !genid_line(out, 0).empty();
        })) << clone.output();
        const std::string out = clone.output();
        EXPECT_EQ(out.find("ged interrupt\n"), 0u) << "the interrupt comes first:\n" << out;
        EXPECT_EQ(out.find("genid unchanged"), std::string::npos) << out;
        clones.push_back(genid_line(out, 0));
    }
    EXPECT_NE(clones[0], original);
    EXPECT_NE(clones[1], original);
    EXPECT_NE(clones[0], clones[1]) << "two clones of one snapshot share a generation ID";
}

TEST_F(Snapshot, ADiskKeepsWorkingAfterRestore) {
    const std::string disk = files.write("disk.img", std::string(1 << 20, '\0'));
    std::string before;
    {
        Ember a;
        ASSERT_TRUE(configure(a, "blk_ticker.elf"));
        ASSERT_TRUE(attach_disk(a, disk));
        ASSERT_EQ(a.call("PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
        ASSERT_TRUE(a.wait_for("blk tick 3 ok")) << a.output();
        ASSERT_EQ(a.call("PATCH", "/vm", R"({"state": "Paused"})").status, 204);
        before = a.output();
        auto created = a.call("PUT", "/snapshot/create", create_body());
        ASSERT_EQ(created.status, 204) << created.body;
        a.kill(SIGKILL);
    }
    Ember b;
    auto loaded = b.call("PUT", "/snapshot/load", load_body(true, state, mem));
    ASSERT_EQ(loaded.status, 204) << loaded.body;
    auto config = b.call("GET", "/vm/config").body;
    EXPECT_NE(config.find("\"drive_id\":\"data\""), std::string::npos)
        << "the restored VM's configuration is the snapshot's:\n"
        << config;
    EXPECT_NE(config.find("\"mem_size_mib\":32"), std::string::npos) << config;
    ASSERT_TRUE(b.wait_until([](const std::string& out) { return lines_in(out) >= 2; }))
        << b.output();
    // A failed disk request would print its own line and break the stream.
    EXPECT_TRUE(one_unbroken_stream(before, b.output(), "blk tick "));
}

std::string file_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

// A copy of the state file at `from`, in its own format, whose vCPUs keep only the MSRs this host's
// KVM lists. The MSRs a KVM saves depend on its CPU: a state file recorded on Intel holds LBR MSRs
// (0x1db...) that the AMD KVM of tests/nested/run refuses, as it should refuse any foreign MSR.
// Every other byte is the original's.
::testing::AssertionResult copy_with_host_msrs(const std::string& from, const std::string& to) {
    const std::string text = file_bytes(from);
    const std::span bytes(reinterpret_cast<const uint8_t*>(text.data()), text.size());
    auto file = snapshot::Reader::parse(bytes, state_sections::kAll);
    if (!file) return ::testing::AssertionFailure() << file.error().message;
    if (file->skipped() != 0) return ::testing::AssertionFailure() << "unknown optional sections";
    auto kvm = Kvm::open();
    if (!kvm) return ::testing::AssertionFailure() << kvm.error().message;
    auto listed = kvm->msr_index_list();
    if (!listed) return ::testing::AssertionFailure() << listed.error().message;
    snapshot::Writer out(file->format_version());
    for (const auto& section : file->sections()) {
        const uint32_t id = section.optional ? section.id | snapshot::kOptional : section.id;
        if (section.id != snapshot::kVcpu) {
            out.add(id, section.version, section.payload);
            continue;
        }
        auto vcpu = snapshot::decode_vcpu(section.payload);
        if (!vcpu) return ::testing::AssertionFailure() << vcpu.error().message;
        std::erase_if(vcpu->msrs, [&](const kvm_msr_entry& msr) {
            return std::find(listed->begin(), listed->end(), msr.index) == listed->end();
        });
        out.add(id, section.version, snapshot::encode(*vcpu));
    }
    const auto written = out.finish();
    std::ofstream(to, std::ios::binary)
        .write(reinterpret_cast<const char*>(written.data()),
               static_cast<std::streamsize>(written.size()));
    return ::testing::AssertionSuccess();
}

// tests/data/state-format-1 is a paused blk_ticker with two drives, snapshotted by ember at
// 7b66950, before device sections carried their device's tag (tests/data/make-state-file writes it
// again): today's ember restores it (with this host's MSRs, above), hands each section to its
// device in the older order, and the guest goes on with its disk.
TEST_F(Snapshot, AStateFileFromBeforeDeviceTagsStillLoadsAndRuns) {
    const std::string fixture = std::string(EMBER_TEST_DATA) + "/state-format-1";
    files.write("data.img", std::string(1 << 20, '\0'));
    files.write("spare.img", std::string(1 << 20, '\0'));
    auto unpacked = run_process(
        {"/bin/sh", "-c", "xz -dc \"$0\" > \"$1\"", fixture + "/vm.mem.xz", mem}, kFailsafe);
    ASSERT_EQ(unpacked.exit_code, 0) << unpacked.err;
    std::ifstream printed_in(fixture + "/console.txt");
    const std::string printed(std::istreambuf_iterator<char>(printed_in), {});
    ASSERT_NE(printed.find("blk tick 3 ok"), std::string::npos) << printed;

    ASSERT_TRUE(copy_with_host_msrs(fixture + "/vm.state", state));

    Ember b({}, files.path());  // the drives are data.img and spare.img, relative to ember
    auto loaded = b.call("PUT", "/snapshot/load", load_body(true, state, mem));
    ASSERT_EQ(loaded.status, 204) << loaded.body;
    auto config = b.call("GET", "/vm/config").body;
    EXPECT_NE(config.find("\"drive_id\":\"spare\""), std::string::npos) << config;
    ASSERT_TRUE(b.wait_until([](const std::string& out) { return lines_in(out) >= 2; }))
        << b.output();
    EXPECT_TRUE(one_unbroken_stream(printed, b.output(), "blk tick "));
}

TEST_F(Snapshot, DiffOnTopOfFullRestoresTheRightBytes) {
    const std::string diff_state = files.path() + "/diff.state",
                      diff_mem = files.path() + "/diff.mem";
    std::string before;
    {
        Ember a;
        ASSERT_TRUE(configure(a, "ticker.elf", /*track_dirty_pages=*/true));
        ASSERT_EQ(a.call("PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
        ASSERT_TRUE(a.wait_for("tick 3 ok")) << a.output();
        ASSERT_EQ(a.call("PATCH", "/vm", R"({"state": "Paused"})").status, 204);
        ASSERT_EQ(a.call("PUT", "/snapshot/create", create_body()).status, 204);
        ASSERT_EQ(a.call("PATCH", "/vm", R"({"state": "Resumed"})").status, 204);
        const int at_full = lines_in(a.output());
        ASSERT_TRUE(a.wait_until([&](const std::string& out) {
            return lines_in(out) >= at_full + 3;
        })) << a.output();
        ASSERT_EQ(a.call("PATCH", "/vm", R"({"state": "Paused"})").status, 204);
        before = a.output();
        auto diff = a.call("PUT", "/snapshot/create",
                           R"({"snapshot_type": "Diff", "snapshot_path": ")" + diff_state +
                               R"(", "mem_file_path": ")" + diff_mem + "\"}");
        ASSERT_EQ(diff.status, 204) << diff.body;
        a.kill(SIGKILL);
    }
    struct stat st{};
    ASSERT_EQ(::stat(diff_mem.c_str(), &st), 0);
    EXPECT_EQ(st.st_size, 32 << 20);
    EXPECT_LT(st.st_blocks * 512, st.st_size / 16) << "a Diff holds only the pages that changed";

    // The Diff's state with the Full memory alone lacks the newest history: the guest says so.
    {
        Ember wrong;
        ASSERT_EQ(wrong.call("PUT", "/snapshot/load", load_body(true, diff_state, mem)).status,
                  204);
        EXPECT_TRUE(wrong.wait_for("CORRUPT")) << wrong.output();
    }
    auto merged = files.path() + "/merged.mem";
    ASSERT_EQ(std::system(("cp " + mem + " " + merged).c_str()), 0);
    auto m = run_process({EMBER_SNAPSHOT_MERGE, merged, diff_mem}, kFailsafe);
    ASSERT_EQ(m.exit_code, 0) << m.err;
    Ember b;
    ASSERT_EQ(b.call("PUT", "/snapshot/load", load_body(true, diff_state, merged)).status, 204);
    ASSERT_TRUE(b.wait_until([](const std::string& out) { return lines_in(out) >= 2; }))
        << b.output();
    EXPECT_TRUE(one_unbroken_stream(before, b.output(), "tick "));
}

TEST_F(Snapshot, ACloneKeepsRunningWhenItsMemoryFileIsDeleted) {
    std::string before = snapshot_a_ticking_guest();
    const std::string copy = files.path() + "/copy.mem";
    ASSERT_EQ(std::system(("cp " + mem + " " + copy).c_str()), 0);
    Ember b;
    ASSERT_EQ(b.call("PUT", "/snapshot/load", load_body(true, state, copy)).status, 204);
    ASSERT_EQ(::unlink(copy.c_str()), 0);  // the mapping holds the file; the name is gone
    ASSERT_TRUE(b.wait_until([](const std::string& out) { return lines_in(out) >= 3; }))
        << b.output();
    EXPECT_TRUE(one_unbroken_stream(before, b.output(), "tick "));
    EXPECT_EQ(b.call("GET", "/").status, 200);
}

TEST_F(Snapshot, RequestsDuringALoadAreAnsweredNotHung) {
    snapshot_a_ticking_guest();
    Ember b;
    std::atomic<bool> loading{true};
    int answered = 0;
    std::thread other([&] {
        auto c = UdsHttpClient::connect(b.sock);
        ASSERT_TRUE(c) << c.error().message;
        // Every request gets its answer (the client gives up after 10 s without one): a GET at
        // once, an action before or after the load, refused cleanly either way.
        while (loading || answered < 3) {
            auto get = c->request("GET", "/");
            ASSERT_TRUE(get) << get.error().message;
            EXPECT_EQ(get->status, 200);
            auto start = c->request("PUT", "/actions", R"({"action_type": "InstanceStart"})");
            ASSERT_TRUE(start) << start.error().message;
            EXPECT_EQ(start->status, 400) << start->body;
            ++answered;
        }
    });
    auto loaded = b.call("PUT", "/snapshot/load", load_body(true, state, mem));
    loading = false;
    other.join();
    EXPECT_EQ(loaded.status, 204) << loaded.body;
    EXPECT_GE(answered, 3);
    EXPECT_TRUE(b.wait_for("tick")) << b.output();
}

// Temporary files a snapshot write leaves in `dir` (there should be none).
int stray_temporaries(const std::string& dir) {
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir))
        if (e.path().filename().string().find(".ember-tmp-") != std::string::npos) ++n;
    return n;
}

struct FileWas {
    std::string path, bytes;
};

// After a create that failed on the paused `vm`: the earlier pair is byte for byte what it was,
// no temporary is left in `dir`, the VM goes on, and the pair still restores the guest where
// `before` left off (`load` is the load request's body for that pair).
void expect_old_pair_whole(Ember& vm, const std::string& dir, const FileWas& state,
                           const FileWas& mem, const std::string& load, const std::string& before) {
    EXPECT_TRUE(file_bytes(mem.path) == mem.bytes) << "a failed create replaced the memory file";
    EXPECT_TRUE(file_bytes(state.path) == state.bytes);
    EXPECT_EQ(stray_temporaries(dir), 0);
    EXPECT_EQ(vm.call("PATCH", "/vm", R"({"state": "Resumed"})").status, 204);
    Ember c;
    ASSERT_EQ(c.call("PUT", "/snapshot/load", load).status, 204);
    ASSERT_TRUE(c.wait_until([](const std::string& out) { return lines_in(out) >= 2; }));
    EXPECT_TRUE(one_unbroken_stream(before, c.output(), "tick "));
}

TEST_F(Snapshot, SnapshottingOntoTheFileItWasRestoredFromIsRefused) {
    std::string before = snapshot_a_ticking_guest();
    const std::string base_mem = file_bytes(mem), base_state = file_bytes(state);
    Ember clone, sibling;
    ASSERT_EQ(clone.call("PUT", "/snapshot/load", load_body(true, state, mem)).status, 204);
    ASSERT_EQ(sibling.call("PUT", "/snapshot/load", load_body(true, state, mem)).status, 204);
    ASSERT_EQ(clone.call("PATCH", "/vm", R"({"state": "Paused"})").status, 204);
    for (const auto& [state_path, mem_path] :
         {std::pair{files.path() + "/new.state", mem}, std::pair{mem, files.path() + "/new.mem"}}) {
        auto r = clone.call("PUT", "/snapshot/create",
                            R"({"snapshot_type": "Full", "snapshot_path": ")" + state_path +
                                R"(", "mem_file_path": ")" + mem_path + "\"}");
        EXPECT_EQ(r.status, 400);
        EXPECT_NE(r.body.find("is the memory file this microVM was restored from"),
                  std::string::npos)
            << r.body;
    }
    auto same = clone.call("PUT", "/snapshot/create",
                           R"({"snapshot_type": "Full", "snapshot_path": ")" + files.path() +
                               R"(/x", "mem_file_path": ")" + files.path() + "/x\"}");
    EXPECT_EQ(same.status, 400);
    EXPECT_NE(same.body.find("name the same file"), std::string::npos) << same.body;

    // Nothing was lost: the base is as it was, both VMs run on, and it still restores.
    EXPECT_TRUE(file_bytes(mem) == base_mem) << "the base memory file changed";
    EXPECT_TRUE(file_bytes(state) == base_state) << "the base state file changed";
    EXPECT_EQ(clone.call("PATCH", "/vm", R"({"state": "Resumed"})").status, 204);
    ASSERT_TRUE(clone.wait_until([](const std::string& out) { return lines_in(out) >= 3; }));
    EXPECT_TRUE(one_unbroken_stream(before, clone.output(), "tick "));
    ASSERT_TRUE(sibling.wait_until([](const std::string& out) { return lines_in(out) >= 3; }));
    EXPECT_TRUE(one_unbroken_stream(before, sibling.output(), "tick "));
    Ember later;
    ASSERT_EQ(later.call("PUT", "/snapshot/load", load_body(true, state, mem)).status, 204);
    ASSERT_TRUE(later.wait_until([](const std::string& out) { return lines_in(out) >= 2; }));
    EXPECT_TRUE(one_unbroken_stream(before, later.output(), "tick "));
}

TEST_F(Snapshot, AFailedCreateLeavesTheOldSnapshotWhole) {
    std::string before = snapshot_a_ticking_guest();
    const std::string base_mem = file_bytes(mem), base_state = file_bytes(state);
    const std::string copy = files.path() + "/copy.mem";
    ASSERT_EQ(std::system(("cp " + mem + " " + copy).c_str()), 0);
    Ember b;
    ASSERT_EQ(b.call("PUT", "/snapshot/load", load_body(true, state, copy)).status, 204);
    ASSERT_TRUE(b.wait_until([](const std::string& out) { return lines_in(out) >= 2; }));
    ASSERT_EQ(b.call("PATCH", "/vm", R"({"state": "Paused"})").status, 204);
    // The memory file is written in full; the state file cannot be (no such directory).
    auto r = b.call("PUT", "/snapshot/create",
                    R"({"snapshot_type": "Full", "snapshot_path": ")" + files.path() +
                        R"(/missing/vm.state", "mem_file_path": ")" + mem + "\"}");
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(r.body.find("missing/vm.state"), std::string::npos) << r.body;
    expect_old_pair_whole(b, files.path(), {state, base_state}, {mem, base_mem},
                          load_body(true, state, mem), before);
}

// The memory file is renamed into place before the state file; when the state file's rename then
// fails (a directory at its path), the previous memory file must come back: a new memory file
// beside the old state file would be a pair that restores a guest with the wrong memory.
TEST_F(Snapshot, AFailedCommitOfTheStateFileLeavesTheOldPairWhole) {
    std::string before = snapshot_a_ticking_guest();
    const std::string base_mem = file_bytes(mem), base_state = file_bytes(state);
    const std::string copy = files.path() + "/copy.mem", blocked = files.path() + "/blocked";
    ASSERT_EQ(std::system(("cp " + mem + " " + copy).c_str()), 0);
    ASSERT_EQ(::mkdir(blocked.c_str(), 0700), 0);
    Ember b;
    ASSERT_EQ(b.call("PUT", "/snapshot/load", load_body(true, state, copy)).status, 204);
    ASSERT_TRUE(b.wait_until([](const std::string& out) { return lines_in(out) >= 2; }));
    ASSERT_EQ(b.call("PATCH", "/vm", R"({"state": "Paused"})").status, 204);
    auto r = b.call("PUT", "/snapshot/create",
                    R"({"snapshot_type": "Full", "snapshot_path": ")" + blocked +
                        R"(", "mem_file_path": ")" + mem + "\"}");
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(r.body.find(blocked + ": Is a directory"), std::string::npos) << r.body;
    expect_old_pair_whole(b, files.path(), {state, base_state}, {mem, base_mem},
                          load_body(true, state, mem), before);
}

TEST_F(Snapshot, ADiffAfterARestoreWithTrackDirtyPages) {
    std::string before = snapshot_a_ticking_guest();  // a Full snapshot, without tracking
    const std::string copy = files.path() + "/base.mem", diff_state = files.path() + "/d.state",
                      diff_mem = files.path() + "/d.mem";
    ASSERT_EQ(std::system(("cp " + mem + " " + copy).c_str()), 0);
    {
        Ember b;
        std::string body = load_body(true, state, copy);
        body.insert(body.size() - 1, R"(, "track_dirty_pages": true)");
        ASSERT_EQ(b.call("PUT", "/snapshot/load", body).status, 204);
        ASSERT_TRUE(b.wait_until([](const std::string& out) { return lines_in(out) >= 3; }));
        ASSERT_EQ(b.call("PATCH", "/vm", R"({"state": "Paused"})").status, 204);
        before += b.output();
        auto diff = b.call("PUT", "/snapshot/create",
                           R"({"snapshot_type": "Diff", "snapshot_path": ")" + diff_state +
                               R"(", "mem_file_path": ")" + diff_mem + "\"}");
        ASSERT_EQ(diff.status, 204) << diff.body;
    }
    // Merged into a copy of the base it follows (never into a file a VM maps).
    const std::string merged = files.path() + "/merged.mem";
    ASSERT_EQ(std::system(("cp " + mem + " " + merged).c_str()), 0);
    auto m = run_process({EMBER_SNAPSHOT_MERGE, merged, diff_mem}, kFailsafe);
    ASSERT_EQ(m.exit_code, 0) << m.err;
    Ember c;
    ASSERT_EQ(c.call("PUT", "/snapshot/load", load_body(true, diff_state, merged)).status, 204);
    ASSERT_TRUE(c.wait_until([](const std::string& out) { return lines_in(out) >= 2; }));
    EXPECT_TRUE(one_unbroken_stream(before, c.output(), "tick "));
}

TEST_F(Snapshot, DiffNeedsDirtyTracking) {
    Ember a;
    ASSERT_TRUE(configure(a, "ticker.elf"));
    ASSERT_EQ(a.call("PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
    ASSERT_EQ(a.call("PATCH", "/vm", R"({"state": "Paused"})").status, 204);
    auto r = a.call("PUT", "/snapshot/create",
                    R"({"snapshot_type": "Diff", "snapshot_path": ")" + state +
                        R"(", "mem_file_path": ")" + mem + "\"}");
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(r.body.find("track_dirty_pages"), std::string::npos) << r.body;
}

TEST_F(Snapshot, InfoToolDescribesAStateFileAndRefusesABadOne) {
    snapshot_a_ticking_guest();
    auto info = run_process({EMBER_SNAPSHOT_INFO, state}, kFailsafe);
    EXPECT_EQ(info.exit_code, 0) << info.err;
    EXPECT_NE(info.out.find("machine: 1 vCPUs, 32 MiB"), std::string::npos) << info.out;
    EXPECT_NE(info.out.find("vCPU 0: rip"), std::string::npos) << info.out;
    EXPECT_NE(info.out.find("memory: 1 regions, 4 KiB pages"), std::string::npos) << info.out;
    // Named from core/base/state_sections.h: the machine's sections and each device's.
    for (const char* name : {"section config", "section vcpu", "section memory layout",
                             "section serial", "section i8042"})
        EXPECT_NE(info.out.find(name), std::string::npos) << name << " in " << info.out;
    EXPECT_EQ(info.out.find("section ?"), std::string::npos) << info.out;
    // A device's section names its device.
    EXPECT_NE(info.out.find("bytes: i8042\n"), std::string::npos) << info.out;
    auto bad = run_process({EMBER_SNAPSHOT_INFO, files.write("bad.state", "nonsense")}, kFailsafe);
    EXPECT_EQ(bad.exit_code, 1);
    EXPECT_NE(bad.err.find("truncated"), std::string::npos) << bad.err;
}

// What is not a state file is refused with a message and exit code 1: no abort on a directory, no
// endless read of /dev/zero, no open() that waits for a FIFO's writer, no huge allocation.
TEST(SnapshotInfo, RefusesWhatIsNotARegularFileOfASaneSize) {
    TempDir dir;
    const std::string fifo = dir.path() + "/fifo", huge = dir.path() + "/huge.state";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    ASSERT_EQ(::truncate(dir.write("huge.state", "").c_str(), 65 << 20), 0);  // sparse
    for (const auto& [path, says] :
         {std::pair{dir.path(), std::string("not a regular file")},
          std::pair{std::string("/dev/zero"), std::string("not a regular file")},
          std::pair{fifo, std::string("not a regular file")},
          std::pair{huge, std::string("68157440 bytes is too large for a snapshot state file")}}) {
        auto r = run_process({EMBER_SNAPSHOT_INFO, path}, kFailsafe);
        EXPECT_FALSE(r.timed_out) << path;
        EXPECT_EQ(r.signal, 0) << path << ": " << r.err;
        EXPECT_EQ(r.exit_code, 1) << path << ": " << r.err;
        EXPECT_NE(r.err.find("ember-snapshot-info: " + path + ": " + says), std::string::npos)
            << r.err;
    }
}

TEST_F(Snapshot, AMemoryFileTruncatedUnderARunningVmIsReportedNotSilent) {
    snapshot_a_ticking_guest();
    auto copy = files.path() + "/copy.mem";
    ASSERT_EQ(std::system(("cp " + mem + " " + copy).c_str()), 0);
    Ember b;
    ASSERT_EQ(b.call("PUT", "/snapshot/load", load_body(false, state, copy)).status, 204);
    ASSERT_EQ(::truncate(copy.c_str(), 0), 0);  // pull the pages away from the paused guest
    (void)b.call("PATCH", "/vm", R"({"state": "Resumed"})");
    int status = 0;
    pid_t done = 0;
    const auto deadline = std::chrono::steady_clock::now() + kFailsafe;
    while ((done = ::waitpid(b.pid, &status, WNOHANG)) == 0 &&
           std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(100ms);
    ASSERT_EQ(done, b.pid) << "ember kept running on memory it no longer has";
    b.pid = -1;
    EXPECT_TRUE(WIFEXITED(status)) << "ember must exit with a status, not die from a signal";
    EXPECT_EQ(WEXITSTATUS(status), 1);
}

TEST_F(Snapshot, BadFilesAndMisuseAreClearErrors) {
    snapshot_a_ticking_guest();
    // As in Firecracker, the process answers and then exits with an error; with
    // --serve-after-failed-load it keeps serving.
    auto load_error = [&](const std::string& state_path, const std::string& mem_path) {
        std::string body;
        for (bool serve : {false, true}) {
            Ember e(serve ? std::vector<std::string>{"--serve-after-failed-load"}
                          : std::vector<std::string>{});
            auto r = e.call("PUT", "/snapshot/load", load_body(true, state_path, mem_path));
            EXPECT_EQ(r.status, 400);
            EXPECT_NE(r.body.find("Failed to restore from snapshot: "), std::string::npos)
                << r.body;
            if (serve) {
                EXPECT_EQ(e.call("GET", "/").status, 200);
            } else {
                int status = 0;
                EXPECT_EQ(::waitpid(e.pid, &status, 0), e.pid);
                e.pid = -1;
                EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << status;
            }
            body = r.body;
        }
        return body;
    };
    std::ifstream in(state, std::ios::binary);
    std::string bytes(std::istreambuf_iterator<char>(in), {});

    std::string corrupt = bytes;
    corrupt[bytes.size() / 2] ^= 0x55;
    EXPECT_NE(load_error(files.write("corrupt.state", corrupt), mem).find("checksum mismatch"),
              std::string::npos);
    EXPECT_NE(load_error(files.write("short.state", bytes.substr(0, bytes.size() / 3)), mem)
                  .find("checksum"),
              std::string::npos);
    std::string newer = bytes;
    newer[8] = 9;
    EXPECT_NE(
        load_error(files.write("newer.state", newer), mem).find("newer than this ember reads"),
        std::string::npos);
    EXPECT_NE(load_error(files.write("foreign.state", "GARBAGE!" + bytes.substr(8)), mem)
                  .find("bad magic"),
              std::string::npos);
    EXPECT_NE(load_error(state, files.path() + "/missing.mem").find("No such file or directory"),
              std::string::npos);
    // A FIFO would block the load's open() for ever, and with it SIGTERM.
    const std::string fifo = files.path() + "/fifo";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    EXPECT_NE(load_error(fifo, mem).find("snapshot_path " + fifo + ": not a regular file"),
              std::string::npos);
    EXPECT_NE(load_error(state, fifo).find("mem_file_path " + fifo + ": not a regular file"),
              std::string::npos);
    EXPECT_NE(load_error(state, "/dev/zero").find("not a regular file"), std::string::npos);
    EXPECT_NE(load_error(state, files.write("small.mem", std::string(4096, '\0')))
                  .find("bytes of memory"),
              std::string::npos);

    Ember clone({"--serve-after-failed-load"});
    std::string body = load_body(true, state, mem);
    body.insert(body.size() - 1,
                R"(, "network_overrides": [{"iface_id": "eth9", "host_dev_name": "tap9"}])");
    auto stray = clone.call("PUT", "/snapshot/load", body);
    EXPECT_EQ(stray.status, 400);
    EXPECT_NE(stray.body.find("the snapshot has no network interface 'eth9'"), std::string::npos)
        << stray.body;

    Ember configured;
    EXPECT_EQ(configured.call("PUT", "/machine-config", R"({"vcpu_count": 1, "mem_size_mib": 32})")
                  .status,
              204);
    auto late = configured.call("PUT", "/snapshot/load", load_body(true, state, mem));
    EXPECT_EQ(late.status, 400);
    EXPECT_NE(late.body.find("Loading a microVM snapshot not allowed after configuring "
                             "boot-specific resources."),
              std::string::npos)
        << late.body;
    EXPECT_EQ(configured.call("GET", "/").status, 200) << "a load refused up front is not fatal";
}

// The process's page faults so far, its threads' included (/proc/PID/stat: minflt and majflt).
uint64_t page_faults(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), {});
    std::istringstream fields(stat.substr(stat.rfind(')') + 2));
    std::string f;
    uint64_t minflt = 0, majflt = 0;
    // After the name: state is field 3, minflt 10, majflt 12.
    for (int i = 3; i <= 12 && fields >> f; ++i) {
        if (i == 10) minflt = std::stoull(f);
        if (i == 12) majflt = std::stoull(f);
    }
    return minflt + majflt;
}

// How many of the guest pages [guest_addr, + pages) are in ember's page tables: guest RAM starts
// where the memory file is mapped from offset 0 (a 32 MiB guest is one region).
uint64_t guest_pages_mapped(pid_t pid, const std::string& memory_file, uint64_t guest_addr,
                            uint64_t pages) {
    std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
    uint64_t base = 0;
    for (std::string line; std::getline(maps, line);) {
        std::istringstream f(line);
        std::string range, perms, offset;
        f >> range >> perms >> offset;
        if (line.find(memory_file) != std::string::npos && std::stoull(offset, nullptr, 16) == 0) {
            base = std::stoull(range.substr(0, range.find('-')), nullptr, 16);
            break;
        }
    }
    EXPECT_NE(base, 0u) << "no mapping of " << memory_file;
    UniqueFd pagemap(::open(("/proc/" + std::to_string(pid) + "/pagemap").c_str(), O_RDONLY));
    std::vector<uint64_t> entries(pages);
    const auto want = static_cast<ssize_t>(pages * sizeof(uint64_t));
    EXPECT_EQ(::pread(pagemap.get(), entries.data(), static_cast<size_t>(want),
                      static_cast<off_t>((base + guest_addr) / 4096 * sizeof(uint64_t))),
              want);
    return static_cast<uint64_t>(
        std::count_if(entries.begin(), entries.end(), [](uint64_t e) { return e >> 63; }));
}

class WorkingSet : public Snapshot {
  protected:
    // Boots the working-set guest to its fill, with `disk` as a drive if given, and snapshots it.
    void snapshot_the_filled_guest(const std::string& disk = "") {
        Ember a;
        ASSERT_TRUE(configure(a, "working_set.elf"));
        if (!disk.empty()) {
            ASSERT_TRUE(attach_disk(a, disk));
        }
        ASSERT_EQ(a.call("PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
        ASSERT_TRUE(a.wait_for("R")) << a.output();
        ASSERT_EQ(a.call("PATCH", "/vm", R"({"state": "Paused"})").status, 204);
        ASSERT_EQ(a.call("PUT", "/snapshot/create", create_body()).status, 204);
    }
    // A clone of the filled guest runs one round, and its working set is recorded while it runs:
    // its pages 512-767 then hold other bytes than the snapshot's.
    void record_working_set() {
        Ember recorder;
        ASSERT_EQ(recorder.call("PUT", "/snapshot/load", load_body(true, state, mem)).status, 204);
        ASSERT_EQ(recorder.call("PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})").status,
                  204);
        ASSERT_TRUE(recorder.wait_for("T")) << recorder.output();
        auto r = recorder.call("PUT", "/snapshot/working-set",
                               R"({"working_set_path": ")" + working_set + "\"}");
        ASSERT_EQ(r.status, 204) << r.body;
    }
    std::string load_with(const std::string& working_set, bool resume = false) const {
        std::string body = load_body(resume, state, mem);
        return body.substr(0, body.size() - 1) + R"(, "working_set_path": ")" + working_set + "\"}";
    }
    // One round of the guest's touches, in a clone loaded paused: the page faults ember took
    // from its resume to the guest's answer, which must be 'T'.
    static uint64_t faults_for_one_round(Ember& clone) {
        const uint64_t before = page_faults(clone.pid);
        EXPECT_EQ(clone.call("PATCH", "/vm", R"({"state": "Resumed"})").status, 204);
        EXPECT_EQ(clone.call("PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})").status,
                  204);
        EXPECT_TRUE(clone.wait_until([](const std::string& out) { return !out.empty(); }));
        EXPECT_EQ(clone.output(), "T") << "a touched page did not hold the snapshot's bytes";
        return page_faults(clone.pid) - before;
    }
    std::string working_set = files.path() + "/vm.ws";
};

TEST_F(WorkingSet, ALoadWithTheRecordedWorkingSetRunsTheSameRoundWithoutItsFaults) {
    ASSERT_NO_FATAL_FAILURE(snapshot_the_filled_guest());
    ASSERT_NO_FATAL_FAILURE(record_working_set());
    // The guest's pages as the working set lists them: those it read and those it wrote, and
    // little else of its 8,192: its code, stack and tables, and whatever the host maps around a
    // touched page (on the paravirtual KVM here, the 256 pages the guest leaves alone came in
    // read-only beside the ones it wrote). Guest addresses are memory-file offsets: 32 MiB is one
    // region.
    std::ifstream state_in(state, std::ios::binary);
    std::string state_bytes((std::istreambuf_iterator<char>(state_in)), {});
    ASSERT_GE(state_bytes.size(), 8u);
    const auto sum = snapshot::closing_checksum(
        {reinterpret_cast<const uint8_t*>(state_bytes.data()), state_bytes.size()});
    UniqueFd ws_fd(::open(working_set.c_str(), O_RDONLY | O_CLOEXEC));
    auto set = snapshot::read_working_set(ws_fd.get(), {sum, 32u << 20});
    ASSERT_TRUE(set) << set.error().message;
    auto pages_of = [&](uint64_t first, uint64_t count, bool written) {
        uint64_t n = 0;
        for (const auto& r : set->runs)
            for (uint64_t p = 0; p < r.pages; ++p) {
                const uint64_t page = r.offset / 4096 + p;
                n += page >= first && page < first + count && (r.written == written);
            }
        return n;
    };
    constexpr uint64_t kFirst = 0x1000000 / 4096;  // the guest's page 0
    EXPECT_EQ(pages_of(kFirst, 512, false), 512u) << "read";
    EXPECT_EQ(pages_of(kFirst + 512, 256, true), 256u) << "written";
    EXPECT_LT(set->counts().read_pages + set->counts().written_pages, 2048u);

    // Loaded paused: with the working set, the guest's 768 pages are mapped before it runs;
    // lazily, none is.
    Ember lazy;
    ASSERT_EQ(lazy.call("PUT", "/snapshot/load", load_body(false, state, mem)).status, 204);
    EXPECT_EQ(guest_pages_mapped(lazy.pid, mem, 0x1000000, 768), 0u);
    const uint64_t lazy_faults = faults_for_one_round(lazy);
    Ember prefetched;
    auto loaded = prefetched.call("PUT", "/snapshot/load", load_with(working_set));
    ASSERT_EQ(loaded.status, 204) << loaded.body;
    EXPECT_EQ(guest_pages_mapped(prefetched.pid, mem, 0x1000000, 768), 768u);
    const uint64_t prefetched_faults = faults_for_one_round(prefetched);
    // A fault per written page at least (how many reads cost one is the host's choice), and
    // those are the faults the working set spares. ember's own faults (its allocator's, and
    // under ASan its shadow memory's) count in both.
    EXPECT_GE(lazy_faults, 256u) << "written pages are faults without a working set";
    EXPECT_GE(lazy_faults, prefetched_faults + 200)
        << prefetched_faults << " faults with the working set, " << lazy_faults << " without";

    // A working set recorded from a clone that was itself loaded with one still loads and runs.
    auto again = prefetched.call("PUT", "/snapshot/working-set",
                                 R"({"working_set_path": ")" + working_set + "\"}");
    ASSERT_EQ(again.status, 204) << again.body;
    Ember third;
    ASSERT_EQ(third.call("PUT", "/snapshot/load", load_with(working_set)).status, 204);
    faults_for_one_round(third);
}

// Where KVM can (KVM_PRE_FAULT_MEMORY), a load with a working set maps its pages in KVM's own
// tables too, so that the guest's round takes no stage-2 fault (the kvm:kvm_page_fault
// tracepoint on its vCPU thread) for them; with --no-pre-fault it takes one a page. Where KVM
// cannot (shadow paging, or before Linux 6.10), ember says nothing of it and the guest runs the
// same.
TEST_F(WorkingSet, PagesPreFaultedInKvmCostTheGuestNoStageTwoFault) {
    ASSERT_NO_FATAL_FAILURE(snapshot_the_filled_guest());
    ASSERT_NO_FATAL_FAILURE(record_working_set());
    auto kvm = Kvm::open();
    ASSERT_TRUE(kvm) << kvm.error().message;
    const bool kvm_can = kvm->check_extension(kvm_abi::kCapPreFaultMemory) > 0;
    const std::string said = "pages mapped for the guest before it runs (KVM_PRE_FAULT_MEMORY)";
    // The stage-2 faults of one round, and whether ember said it pre-faulted.
    auto round = [&](const std::vector<std::string>& flags) {
        const std::string log = files.path() + "/ember.log";
        std::filesystem::remove(log);
        std::vector<std::string> args = {"--level", "Info", "--log-path", log};
        args.insert(args.end(), flags.begin(), flags.end());
        Ember clone(args);
        auto loaded = clone.call("PUT", "/snapshot/load", load_with(working_set));
        EXPECT_EQ(loaded.status, 204) << loaded.body;
        const auto vcpus = vcpu_threads(clone.pid);
        EXPECT_EQ(vcpus.size(), 1u) << "the guest has one vCPU";
        const TracepointCounter faults("kvm/kvm_page_fault", vcpus.empty() ? -1 : vcpus[0]);
        const auto before = faults.now();
        faults_for_one_round(clone);
        const auto after = faults.now();
        std::ifstream in(log);
        const std::string logged(std::istreambuf_iterator<char>(in), {});
        return std::pair{before && after ? std::optional(*after - *before) : std::nullopt,
                         logged.find(said) != std::string::npos};
    };
    const auto [pre_faulted, said_pre_faulted] = round({});
    const auto [on_touch, said_on_touch] = round({"--no-pre-fault"});
    EXPECT_FALSE(said_on_touch);
    EXPECT_EQ(said_pre_faulted, kvm_can);
    // Intel's EPT without its accessed and dirty bits (kvm_intel.ept_ad=N): KVM maps pre-faulted
    // pages for access tracking, and the guest's first touch of each still exits, if only briefly.
    std::ifstream ept_ad_in("/sys/module/kvm_intel/parameters/ept_ad");
    std::string ept_ad;
    ept_ad_in >> ept_ad;
    if (!kvm_can || ept_ad == "N") return;
    ASSERT_TRUE(pre_faulted && on_touch) << "no kvm:kvm_page_fault tracepoint to count with";
    // The round touches 768 pages; the guest's code and stack are in the working set too.
    EXPECT_GE(*on_touch, 768u);
    EXPECT_LT(*pre_faulted * 10, *on_touch) << *pre_faulted << " stage-2 faults pre-faulted";
}

TEST_F(WorkingSet, AMissingOrForeignWorkingSetIsAClearErrorAndNothingLoads) {
    ASSERT_NO_FATAL_FAILURE(snapshot_the_filled_guest());
    {
        Ember recorder;
        ASSERT_EQ(recorder.call("PUT", "/snapshot/load", load_body(true, state, mem)).status, 204);
        ASSERT_EQ(recorder
                      .call("PUT", "/snapshot/working-set",
                            R"({"working_set_path": ")" + working_set + "\"}")
                      .status,
                  204);
        // Another snapshot: the same guest, later.
        ASSERT_EQ(recorder.call("PATCH", "/vm", R"({"state": "Paused"})").status, 204);
        auto other = recorder.call("PUT", "/snapshot/create",
                                   R"({"snapshot_path": ")" + files.path() +
                                       R"(/other.state", "mem_file_path": ")" + files.path() +
                                       "/other.mem\"}");
        ASSERT_EQ(other.status, 204) << other.body;
    }
    auto refused = [&](const std::string& body, const std::string& why) {
        Ember e({"--serve-after-failed-load"});
        auto r = e.call("PUT", "/snapshot/load", body);
        EXPECT_EQ(r.status, 400);
        EXPECT_NE(r.body.find(why), std::string::npos) << r.body;
        EXPECT_NE(e.call("GET", "/").body.find("\"state\":\"Not started\""), std::string::npos)
            << "nothing was loaded";
    };
    refused(load_with(files.path() + "/none.ws"),
            "working_set_path " + files.path() + "/none.ws: No such file or directory");
    const std::string other_load = R"({"snapshot_path": ")" + files.path() +
                                   R"(/other.state", "mem_backend": {)" +
                                   R"("backend_type": "File", "backend_path": ")" + files.path() +
                                   R"(/other.mem"}, "working_set_path": ")" + working_set + "\"}";
    refused(other_load, "recorded from another snapshot");
    refused(load_with(mem), "not a working set file");

    // Recording needs a VM restored from a snapshot.
    Ember booted;
    EXPECT_EQ(
        booted
            .call("PUT", "/snapshot/working-set", R"({"working_set_path": ")" + working_set + "\"}")
            .status,
        400);
    ASSERT_TRUE(configure(booted, "working_set.elf"));
    ASSERT_EQ(booted.call("PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
    auto r = booted.call("PUT", "/snapshot/working-set",
                         R"({"working_set_path": ")" + working_set + "\"}");
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(r.body.find("not restored from a snapshot"), std::string::npos) << r.body;
    auto bad = booted.call("PUT", "/snapshot/working-set", R"({"path": "x"})");
    EXPECT_EQ(bad.status, 400);
    EXPECT_NE(bad.body.find("working_set_path"), std::string::npos) << bad.body;
}

// A load that fails once its working set is in (a drive of the snapshot's is gone, and its device
// is made after the prefetch) is a clear error, and the ember that was asked serves on with nothing
// loaded.
TEST_F(WorkingSet, ALoadThatFailsAfterItsWorkingSetCameInIsAClearErrorAndNothingLoads) {
    const std::string disk = files.write("disk.img", std::string(1 << 20, '\0'));
    ASSERT_NO_FATAL_FAILURE(snapshot_the_filled_guest(disk));
    ASSERT_NO_FATAL_FAILURE(record_working_set());
    ASSERT_EQ(::unlink(disk.c_str()), 0);
    Ember e({"--serve-after-failed-load"});
    auto r = e.call("PUT", "/snapshot/load", load_with(working_set));
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(r.body.find(disk), std::string::npos) << r.body;
    EXPECT_NE(e.call("GET", "/").body.find("\"state\":\"Not started\""), std::string::npos)
        << "nothing was loaded";
}

TEST(SnapshotMerge, RefusesAFifoInsteadOfWaitingForItsOtherEnd) {
    TempDir dir;
    const std::string fifo = dir.path() + "/fifo", file = dir.write("diff.mem", "");
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    for (const auto& [base, diff] : {std::pair{fifo, file}, std::pair{file, fifo}}) {
        auto r = run_process({EMBER_SNAPSHOT_MERGE, base, diff}, kFailsafe);
        EXPECT_FALSE(r.timed_out);
        EXPECT_EQ(r.exit_code, 1) << r.err;
        EXPECT_NE(r.err.find("ember-snapshot-merge: " + fifo + ": not a regular file"),
                  std::string::npos)
            << r.err;
    }
}

}  // namespace
}  // namespace ember::testing
