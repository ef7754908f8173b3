// The Uffd memory backend through the API: a snapshot restored with every page served by a
// page-fault handler, ember-uffd (on demand, and with a working set installed first; from the
// memory file or from a store's chunks) or one written from Firecracker's documentation alone; and
// a handler that is missing or dies, or a store that hands back bad bytes, is a clear error, never
// a hung ember or a guest that sees them.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <thread>

#include "core/arch/x86_64/acpi.h"
#include "snapshot/store/chunk_codec.h"
#include "snapshot/store/manifest.h"
#include "snapshot/uffd/handshake.h"
#include "tests/support/api_ember.h"
#include "tests/support/uffd_handler.h"
#include "tests/support/uffd_snapshot.h"

namespace ember::testing {
namespace {

using namespace std::chrono_literals;

class Uffd : public UffdSnapshot {};

TEST_F(Uffd, EmberUffdServesARestoreOnDemandAndWithAWorkingSet) {
    uint64_t on_demand = 0;
    {
        Handler h(files, {EMBER_UFFD, "--socket", sock, "--mem-file", mem});
        ASSERT_TRUE(wait_exists(sock));
        one_round_through_the_handler();
        ASSERT_EQ(h.wait(), 0) << "ember-uffd ends cleanly once ember is gone: "
                               << read_file(h.err);
        on_demand = count_before(read_file(h.err), "pages served on faults");
        EXPECT_GE(on_demand, 768u) << read_file(h.err);
    }
    record_working_set();
    // The load names the working set too: ember maps its pages for the guest once the handler has
    // installed them (where KVM can pre-fault), and the guest sees the snapshot's bytes.
    Handler h(files, {EMBER_UFFD, "--socket", sock, "--mem-file", mem, "--working-set", ws,
                      "--snapshot-path", state});
    ASSERT_TRUE(wait_exists(sock));
    one_round_through_the_handler(state, ws);
    ASSERT_EQ(h.wait(), 0) << read_file(h.err);
    const std::string log = read_file(h.err);
    EXPECT_GE(count_before(log, "working-set pages installed"), 768u) << log;
    EXPECT_LE(count_before(log, "pages served on faults") + 700, on_demand) << log;
}

// A working set in the load is checked against the snapshot as with the File backend, before
// ember connects to the handler.
TEST_F(Uffd, AWorkingSetOfAnotherSnapshotIsRefusedInAUffdLoad) {
    record_working_set();
    // The same runs, recorded for another state file: a byte of the header's checksum changed.
    std::string other = read_file(ws);
    other[16] = static_cast<char>(other[16] ^ 1);
    const std::string wrong = files.path() + "/other.ws";
    std::ofstream(wrong, std::ios::binary) << other;
    ApiEmber clone;
    auto c = clone.api();
    auto loaded = call(c, "PUT", "/snapshot/load", uffd_load(true, state, wrong));
    EXPECT_EQ(loaded.status, 400);
    EXPECT_NE(loaded.body.find("working_set_path " + wrong), std::string::npos) << loaded.body;
    EXPECT_NE(loaded.body.find("another snapshot"), std::string::npos) << loaded.body;
}

// Two pushes of one snapshot share every chunk; a restore from the store writes the state file for
// the load, fetches the working set's chunks ahead, and serves the rest a chunk per fault.
TEST_F(Uffd, EmberUffdRestoresFromAStoreWithTheWorkingSetFetchedAhead) {
    record_working_set();
    const std::string first = push("fn", true);
    EXPECT_NE(first.find(" 0 shared"), std::string::npos) << first;
    const std::string second = push("fn-again", false);
    EXPECT_NE(second.find(" 0 stored (0 bytes;"), std::string::npos) << second;

    const std::string fetched = files.path() + "/fetched.state";
    const std::string fetched_ws = files.path() + "/fetched.ws";
    {
        Handler h(files, {EMBER_UFFD, "--socket", sock, "--manifest", manifest_url("fn"),
                          "--write-state", fetched, "--write-working-set", fetched_ws});
        ASSERT_TRUE(wait_exists(sock));
        EXPECT_EQ(read_file(fetched), read_file(state))
            << "the state file, whole, before the socket";
        // The working set's index, as recorded (the state file fetched is the one recorded from):
        // the load names it, and ember checks it against the state file.
        EXPECT_EQ(read_file(fetched_ws), read_file(ws));
        one_round_through_the_handler(fetched, fetched_ws);
        ASSERT_EQ(h.wait(), 0) << read_file(h.err);
        const std::string log = read_file(h.err);
        EXPECT_GE(count_before(log, "working-set pages installed"), 768u) << log;
        EXPECT_GT(count_before(log, "of them ahead for the working set"), 0u) << log;
    }
    // Without the working set: every page comes on a fault, a chunk at a time, and no index is
    // written (the one left from before is removed).
    Handler h(files, {EMBER_UFFD, "--socket", sock, "--manifest", manifest_url("fn-again"),
                      "--write-state", fetched, "--write-working-set", fetched_ws});
    ASSERT_TRUE(wait_exists(sock));
    EXPECT_FALSE(std::filesystem::exists(fetched_ws));
    one_round_through_the_handler(fetched);
    ASSERT_EQ(h.wait(), 0) << read_file(h.err);
    const std::string log = read_file(h.err);
    EXPECT_EQ(count_before(log, "of them ahead for the working set"), 0u) << log;
    EXPECT_GT(count_before(log, "pages installed"), count_before(log, "pages served on faults"))
        << "a fault brings in its whole chunk: " << log;
}

// A snapshot of a clone pushed onto the snapshot it was restored from: a chunk the clone changed in
// a few pages goes in as those pages, a patch onto the parent's chunk, so most of its bytes are
// the parent's, stored once. Restored from the store, its memory is the clone's, byte for byte: a
// Full snapshot of the restored VM, every page read through the handler, equals the clone's.
TEST_F(Uffd, ASnapshotPushedOntoItsParentIsMostlyTheParentsAndRestoresByteForByte) {
    const std::string child_state = files.path() + "/child.state",
                      child_mem = files.path() + "/child.mem";
    {
        // The round rewrites 256 of the 1,024 pages filled, a quarter of one 4 MiB chunk.
        ApiEmber clone;
        ASSERT_NO_FATAL_FAILURE(one_round_from_the_file(clone));
        auto c = clone.api();
        ASSERT_EQ(call(c, "PATCH", "/vm", R"({"state": "Paused"})").status, 204);
        ASSERT_EQ(call(c, "PUT", "/snapshot/create",
                       R"({"snapshot_path": ")" + child_state + R"(", "mem_file_path": ")" +
                           child_mem + "\"}")
                      .status,
                  204);
    }
    push_files("parent", state, mem, {"--chunk-size", "4194304"});
    // Everything the store holds two hours old: what the child's push finds there, the parent's
    // chunks under its patches among it, it makes new, so that a collection meanwhile leaves it.
    const std::string chunks = files.path() + "/store/chunks";
    for (const auto& e : std::filesystem::directory_iterator(chunks)) {
        const timespec old{.tv_sec = ::time(nullptr) - 7200, .tv_nsec = 0};
        const timespec times[2] = {old, old};
        ASSERT_EQ(::utimensat(AT_FDCWD, e.path().c_str(), times, 0), 0);
    }
    const std::string pushed = push_files("child", child_state, child_mem,
                                          {"--chunk-size", "4194304", "--parent", "parent"});
    EXPECT_GE(count_before(pushed, "of them patches onto the parent's"), 1u) << pushed;
    std::smatch share;
    ASSERT_TRUE(std::regex_search(pushed, share, std::regex("([0-9]+)% of the snapshot's")))
        << pushed;
    EXPECT_GE(std::stoi(share[1]), 70) << pushed;
    auto manifest =
        snapshot::parse_manifest(read_file(files.path() + "/store/snapshots/child.json"));
    ASSERT_TRUE(manifest) << manifest.error().message;
    ASSERT_FALSE(manifest->memory.patches.empty());
    uint64_t patched_pages = 0;
    for (const auto& [_, patch] : manifest->memory.patches) patched_pages += patch.page_count();
    EXPECT_GE(patched_pages, 256u) << "every page the round rewrote";
    EXPECT_LT(patched_pages, 512u);
    for (const auto& [c, _] : manifest->memory.patches) {
        struct stat st{};
        ASSERT_EQ(::stat((chunks + "/" + manifest->memory.chunks[c]->hex()).c_str(), &st), 0);
        EXPECT_GT(st.st_mtime, ::time(nullptr) - 3600)
            << "the parent's chunk " << c << ", made new";
    }
    // The parent's snapshot removed and the store collected: the child restores all the same.
    ASSERT_EQ(::unlink((files.path() + "/store/snapshots/parent.json").c_str()), 0);
    auto collected = run_process(
        {EMBER_SNAPSHOT, "gc", "--older-than", "3600", "file://" + files.path() + "/store"},
        kFailsafe);
    ASSERT_EQ(collected.exit_code, 0) << collected.err;
    EXPECT_NE(collected.out.find(": 1 manifests and 0 restores' leases name "), std::string::npos)
        << collected.out;

    const std::string fetched = files.path() + "/fetched.state",
                      again = files.path() + "/again.mem";
    Handler h(files, {EMBER_UFFD, "--socket", sock, "--manifest", manifest_url("child"),
                      "--write-state", fetched});
    ASSERT_TRUE(wait_exists(sock));
    // The child's manifest removed too while its handler runs, and every object collected however
    // new: the handler's lease keeps what it names, and every page below still comes.
    const auto gc_now = [&] {
        auto r = run_process(
            {EMBER_SNAPSHOT, "gc", "--older-than", "0", "file://" + files.path() + "/store"},
            kFailsafe);
        EXPECT_EQ(r.exit_code, 0) << r.err;
        return r.out;
    };
    ASSERT_EQ(::unlink((files.path() + "/store/snapshots/child.json").c_str()), 0);
    const std::string leased = gc_now();
    EXPECT_NE(leased.find(": 0 manifests and 1 restores' leases name "), std::string::npos)
        << leased;
    EXPECT_NE(leased.find(" 0 named by none and older than 0 s removed"), std::string::npos)
        << leased;
    {
        ApiEmber restored;
        auto c = restored.api();
        auto loaded = call(c, "PUT", "/snapshot/load", uffd_load(false, fetched));
        ASSERT_EQ(loaded.status, 204) << loaded.body << restored.log();
        ASSERT_EQ(call(c, "PUT", "/snapshot/create",
                       R"({"snapshot_path": ")" + files.path() +
                           R"(/again.state", "mem_file_path": ")" + again + "\"}")
                      .status,
                  204)
            << restored.log();
    }
    ASSERT_EQ(h.wait(), 0) << read_file(h.err);
    const std::string ended = gc_now();
    EXPECT_NE(ended.find(": 0 manifests and 0 restores' leases name 0 of its "), std::string::npos)
        << ended;
    EXPECT_NE(ended.find("; 1 leases no restore holds removed"), std::string::npos) << ended;
    EXPECT_TRUE(std::filesystem::is_empty(chunks)) << ended;
    // The load gave the restored VM a generation ID of its own (the VMGenID device's 16 bytes).
    using x86::kVmGenIdAddr, x86::kVmGenIdBytes;
    std::string restored = read_file(again), clone = read_file(child_mem);
    ASSERT_EQ(restored.size(), clone.size());
    EXPECT_NE(restored.substr(kVmGenIdAddr, kVmGenIdBytes),
              clone.substr(kVmGenIdAddr, kVmGenIdBytes));
    restored.replace(kVmGenIdAddr, kVmGenIdBytes, clone, kVmGenIdAddr, kVmGenIdBytes);
    EXPECT_TRUE(restored == clone)
        << "the restored memory is the clone's, every patched page in its place";
}

// The host-wide cache: a second restore finds every chunk there and fetches nothing from the store.
TEST_F(Uffd, ASecondRestoreThroughTheCacheFetchesNothingFromTheStore) {
    push("fn", false);
    const std::string fetched = files.path() + "/fetched.state";
    const std::string cache = files.path() + "/cache";
    uint64_t first_fetched = 0;
    for (int round = 0; round < 2; ++round) {
        Handler h(files, {EMBER_UFFD, "--socket", sock, "--manifest", manifest_url("fn"),
                          "--write-state", fetched, "--cache", cache});
        ASSERT_TRUE(wait_exists(sock));
        one_round_through_the_handler(fetched);
        ASSERT_EQ(h.wait(), 0) << read_file(h.err);
        const std::string log = read_file(h.err);
        const uint64_t into = count_before(log, "fetched into it");
        if (round == 0) {
            first_fetched = into;
            EXPECT_GT(into, 0u) << log;
        } else {
            EXPECT_EQ(into, 0u) << log;
            EXPECT_GE(count_before(log, "chunks found there"), first_fetched) << log;
        }
    }
}

// A cache smaller than what a restore brings in: each chunk written past the bound lets the least
// recently used ones go, so the folder holds no more than the bound once the restore is done, and
// the restore goes on; the next one fetches again what went.
TEST_F(Uffd, ACacheSmallerThanARestoreKeepsItsBoundAndTheRestoreGoesOn) {
    push("fn", false);
    const std::string fetched = files.path() + "/fetched.state";
    const std::string cache = files.path() + "/cache";
    constexpr uint64_t kBound = uint64_t{1} << 20;  // 8 chunks of 128 KiB
    for (int round = 0; round < 2; ++round) {
        Handler h(files,
                  {EMBER_UFFD, "--socket", sock, "--manifest", manifest_url("fn"), "--write-state",
                   fetched, "--cache", cache, "--cache-bytes", std::to_string(kBound)});
        ASSERT_TRUE(wait_exists(sock));
        one_round_through_the_handler(fetched);
        ASSERT_EQ(h.wait(), 0) << read_file(h.err);
        const std::string log = read_file(h.err);
        EXPECT_GT(count_before(log, "fetched into it"), kBound / (128 << 10)) << log;
        EXPECT_GT(count_before(log, "let go"), 0u) << log;
        if (round == 1) {
            EXPECT_LE(count_before(log, "chunks found there"), kBound / (128 << 10)) << log;
        }
        uint64_t held = 0;
        for (const auto& e : std::filesystem::recursive_directory_iterator(cache))
            if (e.is_regular_file() && e.path().filename().string().size() == 64)
                held += e.file_size();
        EXPECT_GT(held, 0u);
        EXPECT_LE(held, kBound) << "round " << round;
    }
}

// ember-snapshot view: the snapshot made whole in the cache, as files a File load maps; the body
// it prints loads it, and the guest sees the snapshot's bytes. Found again this boot, it is not
// made again (nor the store asked, where the view is pinned by its manifest's SHA-256); one that
// carries another boot's ID (a crash may have left its bytes short) is. Its files are read-only:
// every clone maps its memory. A folder that takes no user xattrs takes no views.
TEST_F(Uffd, AViewInTheCacheRestoresFromLocalFilesAndIsMadeOnceABoot) {
    record_working_set();
    const std::string pushed = push("fn", true);
    std::smatch digest;
    ASSERT_TRUE(std::regex_search(pushed, digest, std::regex("SHA-256 ([0-9a-f]{64})"))) << pushed;
    const std::string cache = files.path() + "/cache";
    if (!takes_user_xattrs(files.path())) {
        // No mark of the boot that checked it: no view would ever be found made.
        auto refused =
            run_process({EMBER_SNAPSHOT, "view", "--cache", cache, manifest_url("fn")}, kFailsafe);
        EXPECT_EQ(refused.exit_code, 1);
        EXPECT_NE(refused.err.find("takes no user xattrs"), std::string::npos) << refused.err;
        return;
    }
    auto view = [&] {
        auto r =
            run_process({EMBER_SNAPSHOT, "view", "--cache", cache, manifest_url("fn")}, kFailsafe);
        EXPECT_EQ(r.exit_code, 0) << r.err;
        return r;
    };
    // find-view makes nothing, and says so by its exit status: pinned, without asking the store
    // (a port nothing listens on); unpinned, having read the manifest.
    auto find = [&](const std::vector<std::string>& pin, const std::string& url) {
        std::vector<std::string> argv = {EMBER_SNAPSHOT, "find-view", "--cache", cache};
        argv.insert(argv.end(), pin.begin(), pin.end());
        argv.push_back(url);
        return run_process(argv, kFailsafe);
    };
    const std::vector<std::string> pin = {"--manifest-sha256", digest[1]};
    const std::string nowhere = "http://127.0.0.1:9/store/snapshots/fn.json";
    for (const auto& none : {find(pin, nowhere), find({}, manifest_url("fn"))}) {
        EXPECT_EQ(none.exit_code, 3) << none.err;
        EXPECT_NE(none.err.find("no view of"), std::string::npos) << none.err;
        EXPECT_EQ(none.out, "");
    }
    // Nothing made, and no chunk fetched into the cache.
    size_t chunks = 0;
    if (std::filesystem::exists(cache))
        for (const auto& e : std::filesystem::recursive_directory_iterator(cache))
            chunks += e.is_regular_file() && e.path().filename().string().size() == 64 ? 1 : 0;
    EXPECT_EQ(chunks, 0u);
    EXPECT_FALSE(std::filesystem::exists(cache + "/views") &&
                 !std::filesystem::is_empty(cache + "/views"));
    const auto first = view();
    EXPECT_NE(first.err.find("made the view"), std::string::npos) << first.err;
    for (const auto& found : {find(pin, nowhere), find({}, manifest_url("fn"))}) {
        EXPECT_EQ(found.exit_code, 0) << found.err;
        EXPECT_EQ(found.out, first.out);
    }
    std::smatch m;
    ASSERT_TRUE(std::regex_search(
        first.out, m,
        std::regex(R"re("backend_path": "([^"]+/views/[0-9a-f]{64}-[0-9a-f]{16}/memory)")re")))
        << first.out;
    const std::string memory = m[1];
    EXPECT_EQ(read_file(memory), read_file(mem)) << "holes where the snapshot has zeros";
    EXPECT_NE(first.out.find(R"("working_set_path": ")"), std::string::npos) << first.out;
    {
        ApiEmber clone;
        auto c = clone.api();
        std::string body = first.out.substr(0, first.out.rfind('}'));
        auto loaded = call(c, "PUT", "/snapshot/load", body + R"(, "resume_vm": true})");
        ASSERT_EQ(loaded.status, 204) << loaded.body << clone.log();
        ASSERT_EQ(call(c, "PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})").status, 204);
        ASSERT_TRUE(wait_text(clone.dir.path() + "/console", "T"));
        EXPECT_EQ(read_file(clone.dir.path() + "/console"), "T");
    }
    const auto again = view();
    EXPECT_EQ(again.out, first.out);
    EXPECT_EQ(again.err.find("made the view"), std::string::npos) << again.err;
    // Pinned by its manifest's SHA-256, a view made this boot is found without asking the store
    // (here a port nothing listens on); a manifest with another is refused.
    auto pinned = run_process({EMBER_SNAPSHOT, "view", "--cache", cache, "--manifest-sha256",
                               digest[1], "http://127.0.0.1:9/store/snapshots/fn.json"},
                              kFailsafe);
    EXPECT_EQ(pinned.exit_code, 0) << pinned.err;
    EXPECT_EQ(pinned.out, first.out);
    // Every clone maps it and would see a write to it: its files are read-only, and a Diff
    // snapshot is not merged onto it (root could write it all the same).
    struct stat st{};
    ASSERT_EQ(::stat(memory.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0444u);
    auto merged = run_process({EMBER_SNAPSHOT_MERGE, memory, mem}, kFailsafe);
    EXPECT_EQ(merged.exit_code, 1);
    EXPECT_NE(merged.err.find("merge onto a copy of it"), std::string::npos) << merged.err;
    auto wrong = run_process({EMBER_SNAPSHOT, "view", "--cache", cache, "--manifest-sha256",
                              std::string(64, '0'), manifest_url("fn")},
                             kFailsafe);
    EXPECT_EQ(wrong.exit_code, 1);
    EXPECT_NE(wrong.err.find("not the pinned"), std::string::npos) << wrong.err;
    EXPECT_TRUE(wrong.out.empty()) << wrong.out;
    {
        const UniqueFd fd(::open(memory.c_str(), O_RDWR | O_CLOEXEC));
        ASSERT_TRUE(fd.valid());
        ASSERT_EQ(::fsetxattr(fd.get(), "user.ember.checked", "another-boot", 12, 0), 0);
        // What a crash could leave: bytes of the working set's first page lost.
        const std::vector<uint8_t> zeros(4096, 0);
        ASSERT_EQ(::pwrite(fd.get(), zeros.data(), zeros.size(), 1 << 20), 4096);
    }
    const auto next_boot = view();
    EXPECT_NE(next_boot.err.find("made the view"), std::string::npos) << next_boot.err;
    EXPECT_EQ(next_boot.out, first.out);
    EXPECT_EQ(read_file(memory), read_file(mem));
}

// Views count against the cache's bound as chunks do: a second snapshot's view in a cache too
// small for both lets the least recently used go, and the folder stays within the bound. A view
// larger than half the bound is refused, with the reason.
TEST_F(Uffd, ViewsKeepToTheCachesBound) {
    if (!takes_user_xattrs(files.path()))
        GTEST_SKIP() << "a folder without user xattrs takes no views (the test above checks that "
                        "it says so)";
    push("fn", false);
    push_files("other", state, mem, {"--chunk-size", "65536"});
    const std::string cache = files.path() + "/cache";
    // The memory's chunks that are not zeros, as the view holds them.
    uint64_t stored = 0;
    {
        auto r =
            run_process({EMBER_SNAPSHOT, "view", "--cache", cache, manifest_url("fn")}, kFailsafe);
        ASSERT_EQ(r.exit_code, 0) << r.err;
        stored = count_before(r.err, "bytes on the disk");
        ASSERT_GT(stored, 0u) << r.err;
    }
    const uint64_t bound = stored * 5 / 2;
    auto r = run_process({EMBER_SNAPSHOT, "view", "--cache", cache, "--cache-bytes",
                          std::to_string(bound), manifest_url("other")},
                         kFailsafe);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_GT(count_before(r.err, "let go"), 0u) << r.err;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(r.out, m, std::regex(R"re("backend_path": "([^"]+)")re")));
    EXPECT_EQ(read_file(m[1]), read_file(mem)) << "the view just made stays whole";
    uint64_t held = 0;
    for (const auto& e : std::filesystem::recursive_directory_iterator(cache)) {
        struct stat st{};
        if (!e.is_regular_file() || ::stat(e.path().c_str(), &st) != 0) continue;
        const std::string name = e.path().filename().string();
        if (name.size() == 64) held += static_cast<uint64_t>(st.st_size);
        if (e.path().parent_path().parent_path().filename() == "views")
            held += static_cast<uint64_t>(st.st_blocks) * 512;
    }
    EXPECT_LE(held, bound);

    auto refused = run_process({EMBER_SNAPSHOT, "view", "--cache", files.path() + "/small",
                                "--cache-bytes", std::to_string(stored), manifest_url("fn")},
                               kFailsafe);
    EXPECT_EQ(refused.exit_code, 1);
    EXPECT_NE(refused.err.find("more than half the cache's bound"), std::string::npos)
        << refused.err;
    EXPECT_TRUE(refused.out.empty()) << refused.out;
}

// Once the VMM's handshake is in, every thread of ember-uffd keeps to its seccomp filter
// ("handler"), and a restore from a store through the cache is served so: a call the filter lacks
// would end the handler with status 148, and the guest with it.
TEST_F(Uffd, EveryThreadOfEmberUffdKeepsToItsSeccompFilterOnceTheVmmIsIn) {
    record_working_set();
    push("fn", true);
    const std::string fetched = files.path() + "/fetched.state";
    const std::string fetched_ws = files.path() + "/fetched.ws";
    Handler h(files,
              {EMBER_UFFD, "--socket", sock, "--manifest", manifest_url("fn"), "--write-state",
               fetched, "--write-working-set", fetched_ws, "--cache", files.path() + "/cache"});
    ASSERT_TRUE(wait_exists(sock)) << read_file(h.err);
    {
        ApiEmber clone;
        auto c = clone.api();
        auto loaded = call(c, "PUT", "/snapshot/load", uffd_load(true, fetched, fetched_ws));
        ASSERT_EQ(loaded.status, 204) << loaded.body << clone.log() << read_file(h.err);
        int threads = 0;
        for (const auto& [task, status] : thread_statuses(h.pid)) {
            EXPECT_NE(status.find("\nSeccomp:\t2\n"), std::string::npos) << task << status;
            ++threads;
        }
        EXPECT_GE(threads, 2) << "the cache's writer, at least";
        ASSERT_EQ(call(c, "PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})").status, 204);
        ASSERT_TRUE(wait_text(clone.dir.path() + "/console", "T")) << read_file(h.err);
    }
    EXPECT_EQ(h.wait(), 0) << read_file(h.err);
}

// A chunk whose bytes are not what its name says (a frame of other bytes), or that is gone: the
// handler refuses it before the guest sees it and exits with the reason, and ember, its memory
// gone, exits saying so.
TEST_F(Uffd, AStoreThatHandsBackBadBytesEndsTheRestoreNeverTheGuestSeesThem) {
    push("fn", false);
    auto manifest = snapshot::parse_manifest(read_file(files.path() + "/store/snapshots/fn.json"));
    ASSERT_TRUE(manifest) << manifest.error().message;
    const std::string fetched = files.path() + "/fetched.state";
    for (const bool corrupt : {true, false}) {
        for (uint64_t i = 0; i < manifest->memory.chunks.size(); ++i) {
            const auto& id = manifest->memory.chunks[i];
            if (!id) continue;
            const std::string path = files.path() + "/store/chunks/" + id->hex();
            if (!corrupt) {
                ::unlink(path.c_str());
                continue;
            }
            // A well-made zstd frame of other bytes of the chunk's length: only the check of the
            // name against what it decompresses to can refuse it.
            const std::vector<uint8_t> other(manifest->chunk_length(manifest->memory.bytes, i),
                                             0xee);
            const auto frame = snapshot::compress_chunk(other, snapshot::kDefaultCompressionLevel);
            ASSERT_TRUE(frame);
            std::ofstream(path, std::ios::binary | std::ios::trunc)
                .write(reinterpret_cast<const char*>(frame->data()),
                       static_cast<std::streamsize>(frame->size()));
        }
        Handler h(files, {EMBER_UFFD, "--socket", sock, "--manifest", manifest_url("fn"),
                          "--write-state", fetched});
        ASSERT_TRUE(wait_exists(sock));
        const std::string err = restore_that_fails(h, fetched);
        EXPECT_NE(err.find(corrupt ? "is corrupt: its bytes hash to" : "No such file or directory"),
                  std::string::npos)
            << err;
    }
}

TEST_F(Uffd, AHandlerWrittenFromFirecrackersDocumentationServesARestore) {
    Handler h(files, {EMBER_DOC_UFFD_HANDLER, sock, mem});
    ASSERT_TRUE(wait_text(h.out, "listening"));
    one_round_through_the_handler();
    EXPECT_TRUE(wait_text(h.out, "1 regions")) << "one region of 32 MiB: " << read_file(h.out);
}

TEST_F(Uffd, AMissingOrDeadHandlerIsAClearErrorNotAHang) {
    {
        ApiEmber e({"--serve-after-failed-load"});
        auto c = e.api();
        auto r = call(c, "PUT", "/snapshot/load", uffd_load(true));
        EXPECT_EQ(r.status, 400);
        EXPECT_NE(r.body.find("mem_backend.backend_path " + sock), std::string::npos) << r.body;
        EXPECT_NE(r.body.find("no page-fault handler listens there"), std::string::npos) << r.body;
        std::string with_ws = uffd_load(true);
        with_ws.insert(with_ws.size() - 1, R"(, "working_set_path": "/x")");
        auto ws_too = call(c, "PUT", "/snapshot/load", with_ws);
        EXPECT_EQ(ws_too.status, 400);
        EXPECT_NE(ws_too.body.find("working_set_path /x: No such file"), std::string::npos)
            << ws_too.body;
        EXPECT_EQ(call(c, "GET", "/").status, 200);
    }
    // A handler that dies after the handshake: the loaded VM's memory is gone, and ember says so
    // and exits rather than leave its vCPU waiting on a fault for ever.
    Handler h(files, {EMBER_UFFD, "--socket", sock, "--mem-file", mem});
    ASSERT_TRUE(wait_exists(sock));
    ApiEmber clone;
    auto c = clone.api();
    ASSERT_EQ(call(c, "PUT", "/snapshot/load", uffd_load(false)).status, 204) << clone.log();
    auto record = call(c, "PUT", "/snapshot/working-set", R"({"working_set_path": ")" + ws + "\"}");
    EXPECT_EQ(record.status, 400);
    EXPECT_NE(record.body.find("restored through the Uffd backend"), std::string::npos)
        << record.body;
    ::kill(h.pid, SIGKILL);
    EXPECT_EQ(h.wait(), -1);
    EXPECT_EQ(clone.wait(), 1);
    EXPECT_NE(clone.log().find("the page-fault handler (pid"), std::string::npos) << clone.log();
}

// ember-uffd took any descriptor as the userfaultfd (a pipe, say), waited on it, and exited 0 as if
// it had served a VM; --timeout went through atoi, so 4294967297 was one second.
TEST(EmberUffd, ADescriptorThatIsNotAUserfaultfdAndABadTimeoutAreErrors) {
    TempDir dir;
    const std::string mem = dir.write("mem", std::string(1 << 20, '\0'));
    const std::string sock = dir.path() + "/uffd.sock";
    for (const std::string bad : {"4294967297", "0", "-1", "30s", ""}) {
        auto r = run_process({EMBER_UFFD, "--socket", sock, "--mem-file", mem, "--timeout", bad},
                             kFailsafe);
        EXPECT_EQ(r.exit_code, 2) << bad;
        EXPECT_NE(r.err.find("--timeout '" + bad + "' is not a whole number of seconds"),
                  std::string::npos)
            << r.err;
    }
    Handler h(dir, {EMBER_UFFD, "--socket", sock, "--mem-file", mem, "--timeout", "60"});
    ASSERT_TRUE(wait_exists(sock));
    int pipe_fds[2];
    ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
    const std::vector<snapshot::UffdRegion> regions = {{0x200000, 1 << 20, 0, 4096}};
    auto sent = snapshot::send_uffd_handshake(sock, regions, pipe_fds[0], kFailsafe);
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    ASSERT_TRUE(sent) << sent.error().message;
    EXPECT_EQ(h.wait(), 1);
    EXPECT_NE(read_file(h.err).find("is not a userfaultfd"), std::string::npos) << read_file(h.err);
}

}  // namespace
}  // namespace ember::testing
