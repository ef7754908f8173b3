// Snapshots that fail: a create that cannot finish leaves the earlier pair whole, a memory file
// pulled from under a running clone ends it with a status, and every bad file or misuse of
// create and load is a clear 400.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <span>
#include <thread>

#include "core/arch/x86_64/cpu_fit.h"
#include "core/kvm/kvm.h"
#include "snapshot/format.h"
#include "snapshot/machine_state.h"
#include "tests/support/snapshot_ember.h"

namespace ember::testing {
namespace {

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
    EXPECT_TRUE(read_file(mem.path) == mem.bytes) << "a failed create replaced the memory file";
    EXPECT_TRUE(read_file(state.path) == state.bytes);
    EXPECT_EQ(stray_temporaries(dir), 0);
    EXPECT_EQ(vm.call("PATCH", "/vm", R"({"state": "Resumed"})").status, 204);
    Ember c;
    ASSERT_EQ(c.call("PUT", "/snapshot/load", load).status, 204);
    ASSERT_TRUE(c.wait_until([](const std::string& out) { return lines_in(out) >= 2; }));
    EXPECT_TRUE(one_unbroken_stream(before, c.output(), "tick "));
}

TEST_F(Snapshot, SnapshottingOntoTheFileItWasRestoredFromIsRefused) {
    std::string before = snapshot_a_ticking_guest();
    const std::string base_mem = read_file(mem), base_state = read_file(state);
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
    EXPECT_TRUE(read_file(mem) == base_mem) << "the base memory file changed";
    EXPECT_TRUE(read_file(state) == base_state) << "the base state file changed";
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
    const std::string base_mem = read_file(mem), base_state = read_file(state);
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
    const std::string base_mem = read_file(mem), base_state = read_file(state);
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

// What a state file from a host with another CPU looks like here: its vCPUs were given a feature of
// leaf 7 that this host's KVM does not offer, and saved an MSR that it does not list. What the
// load should name is in `missing`.
::testing::AssertionResult as_from_another_cpu(const std::string& from, const std::string& to,
                                               x86::CpuShortfall& missing) {
    const std::string text = read_file(from);
    auto file = snapshot::Reader::parse(
        std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()),
        state_sections::kAll);
    if (!file) return ::testing::AssertionFailure() << file.error().message;
    auto kvm = Kvm::open();
    if (!kvm) return ::testing::AssertionFailure() << kvm.error().message;
    auto listed = kvm->msr_index_list();
    auto supported = kvm->supported_cpuid();
    if (!listed || !supported) return ::testing::AssertionFailure() << "KVM's lists";
    uint32_t msr = 0;
    for (uint32_t candidate : {0x1dbu, 0x1dcu, 0x680u, 0x6e1u, 0x4b564dffu})
        if (std::find(listed->begin(), listed->end(), candidate) == listed->end()) {
            msr = candidate;
            break;
        }
    if (msr == 0) return ::testing::AssertionFailure() << "this KVM lists every candidate MSR";
    snapshot::Writer out(file->format_version());
    for (const auto& section : file->sections()) {
        const uint32_t id = section.optional ? section.id | snapshot::kOptional : section.id;
        if (section.id != snapshot::kVcpu) {
            out.add(id, section.version, section.payload);
            continue;
        }
        auto vcpu = snapshot::decode_vcpu(section.payload, section.version);
        if (!vcpu) return ::testing::AssertionFailure() << vcpu.error().message;
        auto leaf7 = std::find_if(vcpu->cpuid.begin(), vcpu->cpuid.end(),
                                  [](const auto& e) { return e.function == 7 && e.index == 0; });
        auto host7 = std::find_if(supported->begin(), supported->end(),
                                  [](const auto& e) { return e.function == 7 && e.index == 0; });
        if (leaf7 == vcpu->cpuid.end() || host7 == supported->end() || host7->ebx == ~0u)
            return ::testing::AssertionFailure() << "no leaf 7 feature to add";
        const uint32_t not_offered = ~host7->ebx;
        leaf7->ebx |= not_offered & (0u - not_offered);  // the lowest of them
        // Not 0: an unlisted MSR at 0 is one a load leaves out.
        vcpu->msrs.push_back(kvm_msr_entry{.index = msr, .reserved = 0, .data = 1});
        missing = x86::cpu_shortfall(vcpu->cpuid, 0, std::span(&vcpu->msrs.back(), 1), *supported,
                                     *listed);
        out.add(id, snapshot::vcpu_section_version(*vcpu), snapshot::encode(*vcpu));
    }
    const auto written = out.finish();
    std::ofstream(to, std::ios::binary)
        .write(reinterpret_cast<const char*>(written.data()),
               static_cast<std::streamsize>(written.size()));
    if (missing.features.size() != 1 || missing.msrs.size() != 1)
        return ::testing::AssertionFailure() << x86::describe(missing);
    return ::testing::AssertionSuccess();
}

// A guest whose CPU this host cannot give is refused before any of it is built, with what is
// missing named, and ember goes on as after any failed load: here it still serves, and the same
// guest from a state file this host fits loads into it and runs.
TEST_F(Snapshot, AGuestCpuThisHostLacksIsRefusedByName) {
    const std::string before = snapshot_a_ticking_guest();
    x86::CpuShortfall missing;
    const std::string foreign = files.path() + "/foreign-cpu.state";
    ASSERT_TRUE(as_from_another_cpu(state, foreign, missing));

    Ember e({"--serve-after-failed-load"});
    auto refused = e.call("PUT", "/snapshot/load", load_body(true, foreign, mem));
    EXPECT_EQ(refused.status, 400);
    EXPECT_NE(refused.body.find("this host lacks " + missing.features.front() +
                                " that the guest was booted with"),
              std::string::npos)
        << refused.body;
    char msr[16];
    std::snprintf(msr, sizeof msr, "0x%x", missing.msrs.front());
    EXPECT_NE(refused.body.find(std::string("does not restore the MSRs ") + msr), std::string::npos)
        << refused.body;
    EXPECT_EQ(e.call("GET", "/").status, 200);

    // ember-snapshot-info tells the same before a load is tried.
    auto told = run_process({EMBER_SNAPSHOT_INFO, "--check-host", foreign}, kFailsafe);
    EXPECT_EQ(told.exit_code, 3) << told.err;
    EXPECT_NE(told.out.find(": cannot load it: this host lacks " + missing.features.front()),
              std::string::npos)
        << told.out;
    auto fits = run_process({EMBER_SNAPSHOT_INFO, "--check-host", state}, kFailsafe);
    EXPECT_EQ(fits.exit_code, 0) << fits.err;
    EXPECT_NE(fits.out.find("): the guest's CPU fits"), std::string::npos) << fits.out;

    auto loaded = e.call("PUT", "/snapshot/load", load_body(true, state, mem));
    ASSERT_EQ(loaded.status, 204) << loaded.body;
    ASSERT_TRUE(e.wait_until([](const std::string& out) { return lines_in(out) >= 2; }));
    EXPECT_TRUE(one_unbroken_stream(before, e.output(), "tick "));
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

}  // namespace
}  // namespace ember::testing
