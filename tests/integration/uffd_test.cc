// The Uffd memory backend through the API: a snapshot restored with every page served by a
// page-fault handler, ember-uffd (on demand, and with a working set installed first) or one
// written from Firecracker's documentation alone; and a handler that is missing or dies is a
// clear error, never a hung ember.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <regex>
#include <string>
#include <thread>

#include "snapshot/uffd/handshake.h"
#include "tests/support/api_ember.h"
#include "tests/support/uffd_handler.h"

namespace ember::testing {
namespace {

using namespace std::chrono_literals;

class Uffd : public ::testing::Test {
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
    std::string uffd_load(bool resume) const {
        return R"({"snapshot_path": ")" + state +
               R"(", "mem_backend": {"backend_type": "Uffd", "backend_path": ")" + sock +
               R"("}, "resume_vm": )" + (resume ? "true" : "false") + "}";
    }
    // Loads through the handler listening on `sock` and runs one round, which must print 'T'.
    void one_round_through_the_handler() {
        ApiEmber clone;
        auto c = clone.api();
        auto loaded = call(c, "PUT", "/snapshot/load", uffd_load(true));
        ASSERT_EQ(loaded.status, 204) << loaded.body << clone.log();
        ASSERT_EQ(call(c, "PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})").status, 204);
        const std::string console = clone.dir.path() + "/console";
        ASSERT_TRUE(wait_file(console, [](const std::string& s) { return !s.empty(); }));
        EXPECT_EQ(read_file(console), "T") << "a page did not hold the snapshot's bytes";
    }

    TempDir files;
    std::string state = files.path() + "/vm.state", mem = files.path() + "/vm.mem",
                sock = files.path() + "/uffd.sock", ws = files.path() + "/vm.ws";
};

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
    // A working set recorded by a File-backed clone after the same round.
    {
        ApiEmber recorder;
        auto c = recorder.api();
        ASSERT_EQ(call(c, "PUT", "/snapshot/load",
                       R"({"snapshot_path": ")" + state +
                           R"(", "mem_backend": {"backend_type": "File", "backend_path": ")" + mem +
                           R"("}, "resume_vm": true})")
                      .status,
                  204);
        ASSERT_EQ(call(c, "PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})").status, 204);
        ASSERT_TRUE(wait_text(recorder.dir.path() + "/console", "T"));
        ASSERT_EQ(call(c, "PUT", "/snapshot/working-set", R"({"working_set_path": ")" + ws + "\"}")
                      .status,
                  204);
    }
    Handler h(files, {EMBER_UFFD, "--socket", sock, "--mem-file", mem, "--working-set", ws,
                      "--snapshot-path", state});
    ASSERT_TRUE(wait_exists(sock));
    one_round_through_the_handler();
    ASSERT_EQ(h.wait(), 0) << read_file(h.err);
    const std::string log = read_file(h.err);
    EXPECT_GE(count_before(log, "working-set pages installed"), 768u) << log;
    EXPECT_LE(count_before(log, "pages served on faults") + 700, on_demand) << log;
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
        EXPECT_NE(ws_too.body.find("ember-uffd --working-set"), std::string::npos) << ws_too.body;
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
