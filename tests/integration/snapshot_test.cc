// Snapshot and restore through the API, across processes: a ticking guest paused in one ember
// goes on, memory intact, in another, after Full and Diff snapshots, with its disk, and from a
// state file of an older format.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <span>
#include <thread>

#include "core/arch/x86_64/cpuid.h"
#include "core/kvm/kvm.h"
#include "core/kvm/vcpu_state.h"
#include "snapshot/decoded_snapshot.h"
#include "snapshot/format.h"
#include "snapshot/machine_state.h"
#include "tests/support/snapshot_ember.h"

namespace ember::testing {
namespace {

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
    const auto flushed = c.call("PUT", "/actions", R"({"action_type": "FlushMetrics"})");
    ASSERT_EQ(flushed.status, 204) << flushed.body;
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

// Nested virtualization's state travels in the snapshot: a guest that cleared SVM's global
// interrupt flag (tests/guest/svm_gif.c) keeps it clear in the restored VM, where its pending timer
// interrupt waits for STGI. Restored without it, KVM starts the vCPU with GIF set.
TEST_F(Snapshot, AGuestUsingNestedVirtualizationKeepsThatStateAcrossARestore) {
    {
        Ember a;
        ASSERT_TRUE(configure(a, "svm_gif.elf"));
        ASSERT_EQ(a.call("PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
        ASSERT_TRUE(a.wait_until([](const std::string& out) {
            return out.find("gif clear\n") != std::string::npos ||
                   out.find("no svm\n") != std::string::npos ||
                   out.find("gif lost\n") != std::string::npos;
        })) << a.output();
        if (a.output().find("no svm\n") != std::string::npos)
            GTEST_SKIP() << "this host's KVM gives guests no SVM (AMD's nested virtualization); "
                            "the nested runner's KVM does";
        ASSERT_NE(a.output().find("gif clear\n"), std::string::npos) << a.output();
        ASSERT_EQ(a.call("PATCH", "/vm", R"({"state": "Paused"})").status, 204);
        auto created = a.call("PUT", "/snapshot/create", create_body());
        ASSERT_EQ(created.status, 204) << created.body;
        a.kill(SIGKILL);
    }
    auto saved = snapshot::read_snapshot(state);
    ASSERT_TRUE(saved) << saved.error().message;
    ASSERT_EQ(saved->vcpus.size(), 1u);
    const auto& nested = saved->vcpus[0].nested;
    ASSERT_GE(nested.size(), sizeof(kvm_nested_state)) << "the state file holds the nested state";
    kvm_nested_state header{};
    std::memcpy(&header, nested.data(), sizeof header);
    EXPECT_EQ(header.format, KVM_STATE_NESTED_FORMAT_SVM);
    EXPECT_EQ(header.flags & KVM_STATE_NESTED_GIF_SET, 0) << "saved with GIF clear";
    auto info = run_process({EMBER_SNAPSHOT_INFO, state}, kFailsafe);
    EXPECT_NE(info.out.find("\n  nested virtualization state: SVM, flags 0, "), std::string::npos)
        << info.out;

    Ember b;
    auto loaded = b.call("PUT", "/snapshot/load", load_body(true, state, mem));
    ASSERT_EQ(loaded.status, 204) << loaded.body;
    ASSERT_TRUE(b.wait_until([](const std::string& out) {
        return out.find("tick\n") != std::string::npos ||
               out.find("gif lost\n") != std::string::npos;
    })) << b.output();
    EXPECT_EQ(b.output(), "gif held\ntick\n");
}

// A KVM VM with its in-kernel irqchip, which a vCPU's LAPIC needs, as ember makes it.
Result<Vm> vm_with_irqchip() {
    auto kvm = Kvm::open();
    EMBER_TRY(kvm);
    auto vm = kvm->create_vm();
    EMBER_TRY(vm);
    EMBER_TRY(vm->create_irqchip());
    return vm;
}

// What restore_vcpu takes a new vCPU to hold, and leaves alone (core/kvm/vcpu_state.h): this
// host's KVM gives each new vCPU the debug registers debugregs_as_at_reset knows, and its VM's TSC
// rate, whatever rate an earlier vCPU was given.
TEST(VcpuAsMade, ANewVcpuHasTheDebugRegistersAndTscRateRestoreTakesItToHave) {
    auto vm = vm_with_irqchip();
    ASSERT_TRUE(vm) << vm.error().message;
    auto first = vm->create_vcpu(0);
    ASSERT_TRUE(first) << first.error().message;
    auto regs = first->get_debugregs();
    ASSERT_TRUE(regs) << regs.error().message;
    EXPECT_TRUE(debugregs_as_at_reset(*regs))
        << "DR6 " << std::hex << regs->dr6 << ", DR7 " << regs->dr7;
    auto rate = first->get_tsc_khz();
    ASSERT_TRUE(rate) << rate.error().message;
    // Where this KVM scales TSCs, vCPU 0 runs at another rate, as a load from a faster host sets.
    if (auto scaled = first->set_tsc_khz(*rate + 100'000); !scaled)
        std::cout << "[ note ] this KVM does not scale TSCs: " << scaled.error().message << "\n";
    auto second = vm->create_vcpu(1);
    ASSERT_TRUE(second) << second.error().message;
    auto later = second->get_tsc_khz();
    ASSERT_TRUE(later) << later.error().message;
    EXPECT_EQ(*later, *rate);
}

// Debug registers a guest used are set back into a new vCPU; a state at reset put into a vCPU
// that is not new sets them back too.
TEST(VcpuAsMade, DebugRegistersAGuestUsedAreRestoredAndOnlyANewVcpusAreLeftAlone) {
    auto vm = vm_with_irqchip();
    ASSERT_TRUE(vm) << vm.error().message;
    auto source = vm->create_vcpu(0);
    ASSERT_TRUE(source) << source.error().message;
    auto at_reset = capture_vcpu(*source, {}, {}, 0);
    ASSERT_TRUE(at_reset) << at_reset.error().message;
    ASSERT_TRUE(debugregs_as_at_reset(at_reset->debugregs));
    VcpuState armed = *at_reset;
    armed.debugregs.db[0] = 0x1000;
    armed.debugregs.dr7 = 0x401;  // L0: DR0's breakpoint on

    auto fresh = vm->create_vcpu(1);
    ASSERT_TRUE(fresh) << fresh.error().message;
    ASSERT_TRUE(
        restore_vcpu(*fresh, armed, {.fresh = true, .cpuid_in_place = true, .tsc_khz = {}}));
    auto got = fresh->get_debugregs();
    ASSERT_TRUE(got) << got.error().message;
    EXPECT_EQ(got->db[0], 0x1000u);
    EXPECT_EQ(got->dr7, 0x401u);

    // The vCPU that now has the breakpoint, given a state at reset, not as a new vCPU.
    ASSERT_TRUE(
        restore_vcpu(*fresh, *at_reset, {.fresh = false, .cpuid_in_place = true, .tsc_khz = {}}));
    got = fresh->get_debugregs();
    ASSERT_TRUE(got) << got.error().message;
    EXPECT_TRUE(debugregs_as_at_reset(*got)) << "DR7 " << std::hex << got->dr7;
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

// Whether any line ember wrote to its metrics file counts a drive throttled by its rate limiter
// (each line holds what a counter gained since the one before).
bool a_drive_was_throttled(const std::string& metrics) {
    std::ifstream in(metrics);
    const std::string key = "\"rate_limiter_throttled_events\":";
    for (std::string line; std::getline(in, line);)
        for (size_t at = line.find(key); at != std::string::npos; at = line.find(key, at + 1))
            if (line[at + key.size()] != '0') return true;
    return false;
}

// A drive's rate limiter allows 12 operations an hour, two per tick of blk_ticker: the guest gets
// six ticks, and its seventh request is throttled, which the metrics show. It is snapshotted
// then; the clone retries that request at once (a restore looks at every queue) and is throttled
// too, with no tick more: the tokens spent before the snapshot stay spent. A clone whose limiter
// started full would tick six more times first. Nothing here depends on how fast anything runs.
TEST_F(Snapshot, TokensARateLimiterSpentBeforeASnapshotStaySpentAfterIt) {
    const std::string disk = files.write("disk.img", std::string(1 << 20, '\0'));
    const auto throttled = [](Ember& e, const std::string& metrics) {
        const auto deadline = std::chrono::steady_clock::now() + kFailsafe;
        while (!a_drive_was_throttled(metrics) && std::chrono::steady_clock::now() < deadline) {
            EXPECT_EQ(e.call("PUT", "/actions", R"({"action_type": "FlushMetrics"})").status, 204);
            std::this_thread::sleep_for(50ms);
        }
        return a_drive_was_throttled(metrics);
    };
    std::string before;
    {
        Ember a;
        ASSERT_TRUE(configure(a, "blk_ticker.elf"));
        auto drive =
            a.call("PUT", "/drives/data",
                   R"({"drive_id": "data", "path_on_host": ")" + disk +
                       R"(", "is_root_device": false, )"
                       R"("rate_limiter": {"ops": {"size": 12, "refill_time": 3600000}}})");
        ASSERT_EQ(drive.status, 204) << drive.body;
        const std::string metrics = a.dir.path() + "/metrics.json";
        ASSERT_EQ(a.call("PUT", "/metrics", R"({"metrics_path": ")" + metrics + "\"}").status, 204);
        ASSERT_EQ(a.call("PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
        ASSERT_TRUE(throttled(a, metrics)) << a.output();
        ASSERT_EQ(a.call("PATCH", "/vm", R"({"state": "Paused"})").status, 204);
        ASSERT_TRUE(a.wait_until([&](const std::string& out) { return lines_in(out) >= 6; }));
        before = a.output();
        ASSERT_EQ(lines_in(before), 6) << before;
        ASSERT_EQ(a.call("PUT", "/snapshot/create", create_body()).status, 204);
        a.kill(SIGKILL);
    }
    Ember b;
    const std::string metrics = b.dir.path() + "/metrics.json";
    ASSERT_EQ(b.call("PUT", "/metrics", R"({"metrics_path": ")" + metrics + "\"}").status, 204);
    auto loaded = b.call("PUT", "/snapshot/load", load_body(true, state, mem));
    ASSERT_EQ(loaded.status, 204) << loaded.body;
    ASSERT_TRUE(throttled(b, metrics)) << b.output();
    EXPECT_TRUE(one_unbroken_stream(before, b.output(), "blk tick "));
    EXPECT_EQ(lines_in(before + b.output()), 6) << before << "--- after the restore:\n"
                                                << b.output();
}

// A copy of the state file at `from`, in its own format, whose vCPUs have this host's CPUID and
// keep only the MSRs this host's KVM lists. Both depend on the CPU and kernel it was recorded on
// (an AMD CPU with gfni, whose KVM reported 0x80000008 hints this one does not), and a load refuses
// a guest CPU this host cannot give (CpuFit in tests/unit). Every other byte is the original's.
::testing::AssertionResult copy_for_this_host(const std::string& from, const std::string& to) {
    const std::string text = read_file(from);
    const std::span bytes(reinterpret_cast<const uint8_t*>(text.data()), text.size());
    auto file = snapshot::Reader::parse(bytes, state_sections::kAll);
    if (!file) return ::testing::AssertionFailure() << file.error().message;
    if (file->skipped() != 0) return ::testing::AssertionFailure() << "unknown optional sections";
    auto kvm = Kvm::open();
    if (!kvm) return ::testing::AssertionFailure() << kvm.error().message;
    auto listed = kvm->msr_index_list();
    if (!listed) return ::testing::AssertionFailure() << listed.error().message;
    auto supported = kvm->supported_cpuid();
    if (!supported) return ::testing::AssertionFailure() << supported.error().message;
    const auto vcpus = static_cast<uint32_t>(
        std::count_if(file->sections().begin(), file->sections().end(),
                      [](const auto& section) { return section.id == snapshot::kVcpu; }));
    uint32_t vcpu_id = 0;
    snapshot::Writer out(file->format_version());
    for (const auto& section : file->sections()) {
        const uint32_t id = section.optional ? section.id | snapshot::kOptional : section.id;
        if (section.id != snapshot::kVcpu) {
            out.add(id, section.version, section.payload);
            continue;
        }
        auto vcpu = snapshot::decode_vcpu(section.payload, section.version);
        if (!vcpu) return ::testing::AssertionFailure() << vcpu.error().message;
        vcpu->cpuid = x86::guest_cpuid(*supported, vcpu_id++, {.vcpu_count = vcpus});
        std::erase_if(vcpu->msrs, [&](const kvm_msr_entry& msr) {
            return std::find(listed->begin(), listed->end(), msr.index) == listed->end();
        });
        out.add(id, snapshot::vcpu_section_version(*vcpu), snapshot::encode(*vcpu));
    }
    const auto written = out.finish();
    std::ofstream(to, std::ios::binary)
        .write(reinterpret_cast<const char*>(written.data()),
               static_cast<std::streamsize>(written.size()));
    return ::testing::AssertionSuccess();
}

// tests/data/state-format-1 is a paused blk_ticker with two drives, snapshotted by ember at
// 7b66950, before device sections carried their device's tag (tests/data/make-state-file writes it
// again): today's ember restores it (with this host's CPU, above), hands each section to its
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

    ASSERT_TRUE(copy_for_this_host(fixture + "/vm.state", state));

    Ember b({}, files.path());  // the drives are data.img and spare.img, relative to ember
    auto loaded = b.call("PUT", "/snapshot/load", load_body(true, state, mem));
    ASSERT_EQ(loaded.status, 204) << loaded.body;
    auto config = b.call("GET", "/vm/config").body;
    EXPECT_NE(config.find("\"drive_id\":\"spare\""), std::string::npos) << config;
    ASSERT_TRUE(b.wait_until([](const std::string& out) { return lines_in(out) >= 2; }))
        << b.output();
    EXPECT_TRUE(one_unbroken_stream(printed, b.output(), "blk tick "));
}

// The mark a restore from a store leaves in a state with interfaces (snapshot/store/store_state.h)
// is taken only as written: empty, and once.
TEST(FromStoreMark, IsTakenOnlyEmptyAndOnce) {
    const std::string text = read_file(std::string(EMBER_TEST_DATA) + "/state-format-1/vm.state");
    const std::span bytes(reinterpret_cast<const uint8_t*>(text.data()), text.size());
    auto original = snapshot::Reader::parse(bytes, state_sections::kAll);
    ASSERT_TRUE(original) << original.error().message;
    auto marked = [&](const std::vector<std::vector<uint8_t>>& marks) {
        snapshot::Writer out(original->format_version());
        for (const auto& section : original->sections())
            out.add(section.optional ? section.id | snapshot::kOptional : section.id,
                    section.version, section.payload);
        for (const auto& mark : marks)
            out.add(state_sections::kFromStore.id | snapshot::kOptional,
                    state_sections::kFromStore.version, mark);
        return snapshot::decode_snapshot(out.finish());
    };
    auto plain = marked({});
    ASSERT_TRUE(plain) << plain.error().message;
    EXPECT_FALSE(plain->from_store);
    auto once = marked({{}});
    ASSERT_TRUE(once) << once.error().message;
    EXPECT_TRUE(once->from_store);
    auto carrying = marked({{1, 2, 3}});
    ASSERT_FALSE(carrying);
    EXPECT_NE(carrying.error().message.find("holds 3 bytes"), std::string::npos)
        << carrying.error().message;
    auto twice = marked({{}, {}});
    ASSERT_FALSE(twice);
    EXPECT_NE(twice.error().message.find("more than one"), std::string::npos)
        << twice.error().message;
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

}  // namespace
}  // namespace ember::testing
