// Ceph's RADOS Gateway (Debian's radosgw, ceph-mon and ceph-osd, installed with the tests'
// packages) on a one-node cluster of its own under `dir`, started by tests/support/rados-gateway:
// S3's API with SigV4 on 127.0.0.1 at a free port, as Ceph's own client libraries test against,
// with one user of the keys the test gives. The gateway's log counts what it was asked for.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "core/base/unique_fd.h"
#include "tests/support/ember_process.h"

namespace ember::testing {

class RadosGateway {
  public:
    RadosGateway(const TempDir& dir, std::string key, std::string secret)
        : dir_(dir.path() + "/ceph"), key_(std::move(key)), secret_(std::move(secret)) {
        port_ = free_loopback_port();
        int to_script[2];
        if (::pipe2(to_script, O_CLOEXEC) != 0) return;
        UniqueFd read_end(to_script[0]);
        alive_ = UniqueFd(to_script[1]);
        const UniqueFd out(::open((dir.path() + "/ceph.out").c_str(),
                                  O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
        pid_ = spawn({EMBER_RADOS_GATEWAY, dir_, std::to_string(port_),
                      std::to_string(free_loopback_port()), key_, secret_},
                     read_end.get(), out.get(), out.get());
        out_ = dir.path() + "/ceph.out";
        for (auto t = std::chrono::steady_clock::now();
             std::chrono::steady_clock::now() - t < kFailsafe;) {
            if (read_file(out_).find("ready\n") != std::string::npos) {
                ready_ = true;
                break;
            }
            if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
                pid_ = -1;
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    }
    ~RadosGateway() { stop(); }
    RadosGateway(const RadosGateway&) = delete;
    RadosGateway& operator=(const RadosGateway&) = delete;

    // Ends the cluster: the script kills its daemons as its stdin ends.
    void stop() {
        alive_ = UniqueFd();
        if (pid_ <= 0) return;
        ::kill(pid_, SIGTERM);
        (void)wait_for_end(pid_, kFailsafe);
        pid_ = -1;
    }
    // Whether its user was made within the failsafe; log() says why not.
    bool ready() const { return ready_; }
    std::string log() const { return read_file(out_) + read_file(dir_ + "/log/client.rgw.log"); }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
    // Makes a bucket as any S3 client would: curl, signing with SigV4 itself, so the bucket's
    // existence does not hang on ember's own signer.
    bool make_bucket(const std::string& bucket) const {
        auto r = run_process({"/usr/bin/curl", "-sf", "-X", "PUT", "--aws-sigv4",
                              "aws:amz:us-east-1:s3", "--user", key_ + ":" + secret_, "-H",
                              "x-amz-content-sha256: "
                              "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                              url() + "/" + bucket},
                             kFailsafe);
        return r.exit_code == 0;
    }
    // Requests the gateway answered whose line in its log holds `what` (as `"GET /bucket/key`).
    int requests(const std::string& what) const {
        return count_lines_containing(read_file(dir_ + "/log/client.rgw.log"), what);
    }

  private:
    std::string dir_, key_, secret_, out_;
    int port_ = 0;
    pid_t pid_ = -1;
    UniqueFd alive_;
    bool ready_ = false;
};

}  // namespace ember::testing
