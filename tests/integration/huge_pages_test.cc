// machine-config.huge_pages "2M": guest memory from the host's pool of 2 MiB pages, reserved when
// the VM starts or loads, for a boot and for restores from the memory file and through ember-uffd;
// an empty pool is a clear error; and dirty tracking still gives a Diff snapshot its pages.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "core/base/unique_fd.h"
#include "tests/support/api_ember.h"
#include "tests/support/huge_page_pool.h"
#include "tests/support/uffd_handler.h"

namespace ember::testing {
namespace {

constexpr uint64_t kGuestPages = 16;  // 32 MiB

class HugePages : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_TRUE(pool.ensure(2 * kGuestPages))
            << "the host could not give " << 2 * kGuestPages << " free 2 MiB pages";
    }
    // Boots the working-set guest (test/guest/working_set.c) on 2 MiB pages, until it has filled
    // its pages.
    void boot(ApiEmber& e, bool track_dirty_pages = false) {
        auto c = e.api();
        ASSERT_EQ(call(c, "PUT", "/machine-config",
                       R"({"vcpu_count": 1, "mem_size_mib": 32, "huge_pages": "2M", )"
                       R"("track_dirty_pages": )" +
                           std::string(track_dirty_pages ? "true" : "false") + "}")
                      .status,
                  204);
        ASSERT_EQ(call(c, "PUT", "/boot-source", boot_source(guest("working_set"))).status, 204);
        const uint64_t before = pool_available();
        auto started = call(c, "PUT", "/actions", R"({"action_type": "InstanceStart"})");
        ASSERT_EQ(started.status, 204) << started.body << e.log();
        ASSERT_TRUE(wait_text(e.dir.path() + "/console", "R")) << e.log();
        // Read once the guest is idle: a page it faults in between the two reads of the pool
        // would move one count and not the other.
        EXPECT_EQ(before - pool_available(), kGuestPages)
            << "the guest's 32 MiB are reserved from the pool as it starts\n"
            << e.log();
    }
    void snapshot(ApiEmber& e, const std::string& type = "Full", const std::string& memory = "") {
        auto c = e.api();
        ASSERT_EQ(call(c, "PATCH", "/vm", R"({"state": "Paused"})").status, 204) << e.log();
        auto r = call(c, "PUT", "/snapshot/create",
                      R"({"snapshot_type": ")" + type + R"(", "snapshot_path": ")" + state +
                          R"(", "mem_file_path": ")" + (memory.empty() ? mem : memory) + "\"}");
        ASSERT_EQ(r.status, 204) << r.body;
    }
    // One round of the guest in `e`: it must print 'T'.
    static void one_round(ApiEmber& e) {
        auto c = e.api();
        const std::string console = e.dir.path() + "/console";
        const size_t printed = read_file(console).size();
        ASSERT_EQ(call(c, "PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})").status, 204);
        ASSERT_TRUE(wait_file(console, [&](const std::string& s) { return s.size() > printed; }));
        EXPECT_EQ(read_file(console).substr(printed), "T")
            << "a page did not hold the snapshot's bytes";
    }
    std::string load_body(const std::string& backend, const std::string& path) const {
        return R"({"snapshot_path": ")" + state + R"(", "mem_backend": {"backend_type": ")" +
               backend + R"(", "backend_path": ")" + path + R"("}, "resume_vm": true})";
    }

    HugePagePool pool;
    TempDir files;
    std::string state = files.path() + "/vm.state", mem = files.path() + "/vm.mem",
                sock = files.path() + "/uffd.sock";
};

TEST_F(HugePages, ABootAndItsRestoresFromTheFileAndThroughEmberUffd) {
    {
        ApiEmber source;
        boot(source);
        auto c = source.api();
        EXPECT_NE(call(c, "GET", "/vm/config").body.find(R"("huge_pages":"2M")"),
                  std::string::npos);
        snapshot(source);
    }
    auto info = run_process({EMBER_SNAPSHOT_INFO, state}, kFailsafe);
    EXPECT_NE(info.out.find("memory: 1 regions, 2048 KiB pages"), std::string::npos) << info.out;
    {
        ApiEmber clone;
        auto c = clone.api();
        const uint64_t before = pool_available();
        auto loaded = call(c, "PUT", "/snapshot/load", load_body("File", mem));
        ASSERT_EQ(loaded.status, 204) << loaded.body << clone.log();
        EXPECT_NE(call(c, "GET", "/vm/config").body.find(R"("huge_pages":"2M")"),
                  std::string::npos);
        one_round(clone);
        EXPECT_EQ(before - pool_available(), kGuestPages);
        auto record = call(c, "PUT", "/snapshot/working-set",
                           R"({"working_set_path": ")" + files.path() + "/vm.ws\"}");
        expect_fault(record, "on huge pages");
    }
    Handler h(files, {EMBER_UFFD, "--socket", sock, "--mem-file", mem});
    ASSERT_TRUE(wait_exists(sock));
    {
        ApiEmber clone;
        auto c = clone.api();
        auto loaded = call(c, "PUT", "/snapshot/load", load_body("Uffd", sock));
        ASSERT_EQ(loaded.status, 204) << loaded.body << clone.log();
        one_round(clone);
    }
    ASSERT_EQ(h.wait(), 0) << read_file(h.err);
    // 768 pages of 4 KiB touched, in 2 MiB faults: the 6 MiB they span, and little else.
    const uint64_t served = count_before(read_file(h.err), "pages served on faults");
    EXPECT_GE(served, 3u) << read_file(h.err);
    EXPECT_LE(served, kGuestPages) << read_file(h.err);
}

TEST_F(HugePages, AnEmptyPoolIsAClearErrorAtStartAndAtLoad) {
    {
        ApiEmber source;
        boot(source);
        snapshot(source);
    }
    pool.empty();
    ApiEmber e({"--serve-after-failed-load"});
    auto c = e.api();
    auto loaded = call(c, "PUT", "/snapshot/load", load_body("File", mem));
    expect_fault(loaded, "raise /proc/sys/vm/nr_hugepages");
    expect_fault(loaded, "machine-config.huge_pages \\\"2M\\\"");
    EXPECT_EQ(call(c, "GET", "/").status, 200);

    ApiEmber fresh;
    auto f = fresh.api();
    ASSERT_EQ(call(f, "PUT", "/machine-config", R"({"vcpu_count": 1, "mem_size_mib": 32})").status,
              204);
    expect_fault(call(f, "PATCH", "/machine-config", R"({"huge_pages": "1G"})"),
                 "huge_pages: unknown variant `1G`, expected `None` or `2M`");
    ASSERT_EQ(call(f, "PATCH", "/machine-config", R"({"huge_pages": "2M"})").status, 204);
    ASSERT_EQ(call(f, "PUT", "/boot-source", boot_source(guest("working_set"))).status, 204);
    expect_fault(call(f, "PUT", "/actions", R"({"action_type": "InstanceStart"})"),
                 "pool of 2 MiB pages cannot give the 16 pages");
    EXPECT_EQ(call(f, "GET", "/").status, 200);
}

// KVM logs the guest's writes at 4 KiB even on 2 MiB pages: a Diff holds the pages the round
// wrote, and not the ones it only read.
TEST_F(HugePages, DirtyTrackingGivesADiffSnapshotItsPages) {
    ApiEmber source;
    boot(source, /*track_dirty_pages=*/true);
    snapshot(source);
    auto c = source.api();
    ASSERT_EQ(call(c, "PATCH", "/vm", R"({"state": "Resumed"})").status, 204);
    one_round(source);
    const std::string diff = files.path() + "/vm.diff";
    snapshot(source, "Diff", diff);

    UniqueFd fd(::open(diff.c_str(), O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(fd.valid());
    auto word_at = [&](uint64_t page) {
        uint64_t v = 0;
        EXPECT_EQ(::pread(fd.get(), &v, sizeof v, static_cast<off_t>(0x1000000 + page * 4096)),
                  static_cast<ssize_t>(sizeof v));
        return v;
    };
    EXPECT_EQ(word_at(512), 512u + 1000000u) << "a page the round wrote";
    EXPECT_EQ(word_at(767), 767u + 1000000u);
    EXPECT_EQ(word_at(0), 0u) << "a page the round only read is not in the Diff";
}

}  // namespace
}  // namespace ember::testing
