// Working sets: recorded from a running clone, loaded with a snapshot so the guest's round takes
// none of its faults, pre-faulted in KVM, and refused clearly when missing, foreign or followed by
// a failed load.
#include <fcntl.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "core/kvm/kvm.h"
#include "core/kvm/kvm_abi.h"
#include "snapshot/format.h"
#include "snapshot/working_set.h"
#include "tests/support/snapshot_ember.h"
#include "tests/support/tracepoint_counter.h"
#include "tests/support/vcpu_threads.h"

namespace ember::testing {
namespace {

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

}  // namespace
}  // namespace ember::testing
