// ember driven the way Firecracker's Go SDK (v1.0.0, which firectl pins) drives a VMM before boot,
// as its handlers.go and machine.go send it, read from the SDK and written here from scratch: the
// readiness probe GET /machine-config every 10 ms until it answers, the log and metrics FIFOs it
// mkfifos (0700) and does not read, then PUT /logger, PUT /metrics, PUT /machine-config and the
// GET that follows it, PUT /boot-source, the drives with the root drive last, the network
// interfaces numbered from 1, InstanceStart; and SIGTERM to stop it. Bodies are what Go's JSON
// encoder writes (keys in the struct's order, a newline at the end), with Go's headers, on one
// keep-alive connection.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <optional>
#include <string>

#include "core/base/unique_fd.h"
#include "tests/support/api_ember.h"
#include "tests/support/netns.h"

namespace ember::testing {
namespace {

// One request as Go's net/http writes it on a kept-alive connection.
std::string go_request(const std::string& method, const std::string& path,
                       const std::string& body = "") {
    std::string r =
        method + " " + path + " HTTP/1.1\r\nHost: localhost\r\nUser-Agent: Go-http-client/1.1\r\n";
    if (!body.empty())
        r += "Content-Length: " + std::to_string(body.size()) +
             "\r\nAccept: application/json\r\nContent-Type: application/json\r\n";
    else
        r += "Accept: application/json\r\n";
    return r + "Accept-Encoding: gzip\r\n\r\n" + body;
}

HttpReply send(UdsHttpClient& c, const std::string& method, const std::string& path,
               const std::string& body = "") {
    EXPECT_TRUE(c.send_raw(go_request(method, path, body)));
    auto r = c.read_reply();
    EXPECT_TRUE(r) << method << " " << path << ": " << r.error().message;
    return r ? *r : HttpReply{};
}

TEST(GoSdk, TheSdksCallsBeforeBootWithFifosNobodyReadsThenSigterm) {
    ASSERT_TRUE(enter_new_netns());
    ASSERT_TRUE(create_tap("sdktap0"));
    TempDir dir;
    const std::string sock = dir.path() + "/firecracker.sock";
    const std::string root = dir.write("root.img", std::string(1 << 20, '\0'));
    const std::string scratch = dir.write("scratch.img", std::string(1 << 20, '\0'));
    const int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    const std::string err_path = dir.path() + "/stderr";
    const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    // firectl replaces the SDK's command with its own: ember and --api-sock, nothing more.
    const pid_t pid = spawn({EMBER_BINARY, "--api-sock", sock}, devnull, devnull, err);
    ::close(devnull);
    ::close(err);

    // waitForSocket: the file, then any 2xx for GET /machine-config, polled every 10 ms.
    std::optional<UdsHttpClient> c;
    const auto deadline = std::chrono::steady_clock::now() + kFailsafe;
    while (!c && std::chrono::steady_clock::now() < deadline) {
        if (auto probe = UdsHttpClient::connect(sock, 10)) {
            if (send(*probe, "GET", "/machine-config").status == 200) c = std::move(*probe);
        } else {
            ::poll(nullptr, 0, 10);
        }
    }
    ASSERT_TRUE(c) << "ember never answered the readiness probe";

    // CreateLogFilesHandler: the metrics FIFO, then the log FIFO; the SDK reads neither here.
    const std::string metrics_fifo = dir.path() + "/fc_metrics_fifo";
    const std::string log_fifo = dir.path() + "/fc_fifo";
    ASSERT_EQ(::mkfifo(metrics_fifo.c_str(), 0700), 0);
    ASSERT_EQ(::mkfifo(log_fifo.c_str(), 0700), 0);

    EXPECT_EQ(send(*c, "PUT", "/logger",
                   R"({"level":"Debug","log_path":")" + log_fifo +
                       R"(","show_level":true,"show_log_origin":false})"
                       "\n")
                  .status,
              204);
    EXPECT_EQ(send(*c, "PUT", "/metrics", R"({"metrics_path":")" + metrics_fifo + "\"}\n").status,
              204);
    EXPECT_EQ(send(*c, "PUT", "/machine-config",
                   R"({"mem_size_mib":32,"smt":false,"vcpu_count":1})"
                   "\n")
                  .status,
              204);
    const HttpReply machine = send(*c, "GET", "/machine-config");
    EXPECT_EQ(machine.status, 200);
    EXPECT_NE(machine.body.find("\"mem_size_mib\":32"), std::string::npos) << machine.body;
    EXPECT_EQ(send(*c, "PUT", "/boot-source",
                   R"({"boot_args":"panic=1 reboot=k console=ttyS0","kernel_image_path":")" +
                       guest("counter") + "\"}\n")
                  .status,
              204);
    // firectl puts the extra drives first, with ids from "2", and the root drive "1" last.
    EXPECT_EQ(
        send(*c, "PUT", "/drives/2",
             R"({"drive_id":"2","is_read_only":false,"is_root_device":false,"path_on_host":")" +
                 scratch + "\"}\n")
            .status,
        204);
    EXPECT_EQ(send(*c, "PUT", "/drives/1",
                   R"({"drive_id":"1","is_read_only":true,"is_root_device":true,"path_on_host":")" +
                       root + "\"}\n")
                  .status,
              204);
    EXPECT_EQ(send(*c, "PUT", "/network-interfaces/1",
                   R"({"guest_mac":"06:00:c0:a8:00:02","host_dev_name":"sdktap0","iface_id":"1"})"
                   "\n")
                  .status,
              204);
    EXPECT_EQ(send(*c, "PUT", "/actions",
                   R"({"action_type":"InstanceStart"})"
                   "\n")
                  .status,
              204);
    const HttpReply info = send(*c, "GET", "/");
    EXPECT_NE(info.body.find("\"state\":\"Running\""), std::string::npos) << info.body;

    // firectl -l reads the log FIFO once the VMM has it: the lines come in Firecracker's layout.
    UniqueFd reader(::open(log_fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    ASSERT_TRUE(reader.valid());
    EXPECT_EQ(send(*c, "GET", "/machine-config").status, 200);
    const std::string logged = read_until(reader.get(), "Status code: 200 OK.", kFailsafe);
    EXPECT_NE(logged.find(" [anonymous-instance:ember_api:INFO] The API server received a Get "
                          "request on \"/machine-config\"."),
              std::string::npos)
        << logged;

    // StopVMM: SIGTERM, and a clean exit, which Machine.Wait takes as success.
    expect_sigterm_ends_cleanly(pid);
}

}  // namespace
}  // namespace ember::testing
