// The snapshot the Uffd tests restore (tests/integration/uffd_test.cc, store_test.cc): the
// working-set guest, filled and snapshotted, with what restoring it through a handler, recording
// its working set and pushing it into a store take.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "tests/support/api_ember.h"
#include "tests/support/uffd_handler.h"

namespace ember::testing {

// Flips the bits of a file's first byte: a chunk that rotted in a store or in transit.
inline void corrupt_first_byte(const std::string& path) {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    char byte = 0;
    f.get(byte);
    f.seekp(0);
    f.put(static_cast<char>(byte ^ 0x5a));
}

class UffdSnapshot : public ::testing::Test {
  protected:
    // The working-set guest, filled and snapshotted: each SendCtrlAltDel then makes it read 512
    // of its pages, check them and rewrite 256, and print 'T' (or '?' for a page that held other
    // bytes than the snapshot's).
    void SetUp() override {
        ApiEmber a;
        auto c = a.api();
        ASSERT_EQ(
            call(c, "PUT", "/machine-config", R"({"vcpu_count": 1, "mem_size_mib": 32})").status,
            204);
        ASSERT_EQ(call(c, "PUT", "/boot-source",
                       R"({"kernel_image_path": ")" + guest("working_set") + "\"}")
                      .status,
                  204);
        ASSERT_EQ(call(c, "PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
        ASSERT_TRUE(wait_text(a.dir.path() + "/console", "R"));
        ASSERT_EQ(call(c, "PATCH", "/vm", R"({"state": "Paused"})").status, 204);
        ASSERT_EQ(call(c, "PUT", "/snapshot/create",
                       R"({"snapshot_path": ")" + state + R"(", "mem_file_path": ")" + mem + "\"}")
                      .status,
                  204);
    }
    std::string uffd_load(bool resume) const { return uffd_load(resume, state); }
    // With `working_set`, ember maps its pages for the guest once the handler has them; the
    // handler listens on `socket`, or on `sock` where it is empty.
    std::string uffd_load(bool resume, const std::string& state_path,
                          const std::string& working_set = "",
                          const std::string& socket = "") const {
        std::string body = R"({"snapshot_path": ")" + state_path +
                           R"(", "mem_backend": {"backend_type": "Uffd", "backend_path": ")" +
                           (socket.empty() ? sock : socket) + R"("}, "resume_vm": )" +
                           (resume ? "true" : "false");
        if (!working_set.empty()) body += R"(, "working_set_path": ")" + working_set + "\"";
        return body + "}";
    }
    // Loads through the handler listening on `sock` (or `socket`) and runs one round, which must
    // print 'T'.
    void one_round_through_the_handler() { one_round_through_the_handler(state); }
    void one_round_through_the_handler(const std::string& state_path,
                                       const std::string& working_set = "",
                                       const std::string& socket = "") {
        ApiEmber clone;
        auto c = clone.api();
        auto loaded =
            call(c, "PUT", "/snapshot/load", uffd_load(true, state_path, working_set, socket));
        ASSERT_EQ(loaded.status, 204) << loaded.body << clone.log();
        ASSERT_EQ(call(c, "PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})").status, 204);
        const std::string console = clone.dir.path() + "/console";
        ASSERT_TRUE(wait_file(console, [](const std::string& s) { return !s.empty(); }));
        EXPECT_EQ(read_file(console), "T") << "a page did not hold the snapshot's bytes";
    }

    // Loads the snapshot into `clone` from the memory file and runs one round, which must print
    // 'T'.
    void one_round_from_the_file(ApiEmber& clone) {
        auto c = clone.api();
        ASSERT_EQ(call(c, "PUT", "/snapshot/load",
                       R"({"snapshot_path": ")" + state +
                           R"(", "mem_backend": {"backend_type": "File", "backend_path": ")" + mem +
                           R"("}, "resume_vm": true})")
                      .status,
                  204);
        ASSERT_EQ(call(c, "PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})").status, 204);
        ASSERT_TRUE(wait_text(clone.dir.path() + "/console", "T"));
    }
    // A working set recorded by a File-backed clone after one round, at `ws`.
    void record_working_set() {
        ApiEmber recorder;
        ASSERT_NO_FATAL_FAILURE(one_round_from_the_file(recorder));
        auto c = recorder.api();
        ASSERT_EQ(call(c, "PUT", "/snapshot/working-set", R"({"working_set_path": ")" + ws + "\"}")
                      .status,
                  204);
    }
    // ember-snapshot push of the snapshot (with the working set where `with_ws`) as `name` into
    // the store under files/store; returns what it printed.
    std::string push(const std::string& name, bool with_ws) {
        return with_ws ? push_files(name, state, mem, {"--working-set", ws})
                       : push_files(name, state, mem, {});
    }
    // ember-snapshot push of the snapshot at `from_state` and `from_mem`, with `more` arguments,
    // as `name` into the store under files/store; returns what it printed.
    std::string push_files(const std::string& name, const std::string& from_state,
                           const std::string& from_mem, const std::vector<std::string>& more) {
        std::vector<std::string> argv = {EMBER_SNAPSHOT,    "push",  "--snapshot-path", from_state,
                                         "--mem-file-path", from_mem};
        argv.insert(argv.end(), more.begin(), more.end());
        argv.push_back(manifest_url(name));
        auto r = run_process(argv, kFailsafe);
        EXPECT_EQ(r.exit_code, 0) << r.err;
        return r.out;
    }
    // A load from `state_path` through handler `h`, then a resume, where the handler must fail on
    // the first touch of guest memory (the load's own, of the VM generation ID, or the guest's):
    // ember may end before it answers either, and must end after the handler, saying so. Returns
    // the handler's stderr.
    std::string restore_that_fails(Handler& h, const std::string& state_path) {
        ApiEmber clone;
        auto c = clone.api();
        (void)c.request("PUT", "/snapshot/load", uffd_load(false, state_path));
        (void)c.request("PATCH", "/vm", R"({"state": "Resumed"})");
        EXPECT_EQ(h.wait(), 1);
        EXPECT_EQ(clone.wait(), 1);
        EXPECT_NE(clone.log().find("the page-fault handler (pid"), std::string::npos)
            << clone.log();
        return read_file(h.err);
    }
    std::string manifest_url(const std::string& name) const {
        return "file://" + files.path() + "/store/snapshots/" + name + ".json";
    }

    TempDir files;
    std::string state = files.path() + "/vm.state", mem = files.path() + "/vm.mem",
                sock = files.path() + "/uffd.sock", ws = files.path() + "/vm.ws";
};

}  // namespace ember::testing
