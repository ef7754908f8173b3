// A stand-in for an S3 endpoint (as AWS_ENDPOINT_URL names one: path-style, /BUCKET/KEY): serves
// one bucket's objects from a folder (GET, HEAD) and takes new ones into it (PUT), over cpp-httplib
// on 127.0.0.1, and answers 403 to a request whose SigV4 signature is not the one its credentials
// make for it (recomputed here with the client's signer, which a unit test holds to AWS's own
// example). It counts what it served, refused and stored.
#pragma once

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "api/client/store/sigv4.h"
#include "tests/support/ember_process.h"

namespace ember::testing {

class FakeS3 {
  public:
    FakeS3(std::string bucket, std::string root, client::AwsCredentials credentials)
        : bucket_(std::move(bucket)), root_(std::move(root)), credentials_(std::move(credentials)) {
        server_.Get(".*", [this](const httplib::Request& req, httplib::Response& res) {
            const std::string prefix = "/" + bucket_ + "/";
            if (!signed_well(req)) {
                ++refused_;
                res.status = 403;
                res.set_content("<Error><Code>SignatureDoesNotMatch</Code></Error>",
                                "application/xml");
                return;
            }
            ++served_;
            const std::string key = req.path.substr(prefix.size());
            if (!req.path.starts_with(prefix) || key.find("..") != std::string::npos ||
                ::access((root_ + "/" + key).c_str(), R_OK) != 0) {
                res.status = 404;
                return;
            }
            res.set_content(read_file(root_ + "/" + key), "application/octet-stream");
        });
        // A PUT's object goes into the folder, its own folders made as needed; its body must hash
        // to what its signature says it does (S3's XAmzContentSHA256Mismatch).
        server_.Put(".*", [this](const httplib::Request& req, httplib::Response& res) {
            const std::string prefix = "/" + bucket_ + "/";
            if (!signed_well(req)) {
                ++refused_;
                res.status = 403;
                return;
            }
            const std::string key = req.path.substr(std::min(prefix.size(), req.path.size()));
            if (!req.path.starts_with(prefix) || key.empty() ||
                key.find("..") != std::string::npos) {
                res.status = 400;
                return;
            }
            if (client::sha256_hex(req.body) != req.get_header_value("x-amz-content-sha256")) {
                ++refused_;
                res.status = 400;
                return;
            }
            ++stored_;
            std::filesystem::path path(root_ + "/" + key);
            std::filesystem::create_directories(path.parent_path());
            std::ofstream(path, std::ios::binary) << req.body;
            res.status = 200;
        });
        // One request a connection: cpp-httplib's few worker threads would otherwise sit on the
        // fetcher's 32 kept-alive connections until each times out.
        server_.set_keep_alive_max_count(1);
        // Bound and listening once this returns: a connection waits in the backlog until the
        // thread's loop takes it.
        port_ = server_.bind_to_any_port("127.0.0.1");
        thread_ = std::jthread([this] { server_.listen_after_bind(); });
    }
    ~FakeS3() {
        server_.stop();
        thread_.join();
    }
    FakeS3(const FakeS3&) = delete;
    FakeS3& operator=(const FakeS3&) = delete;

    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
    int served() const { return served_; }
    int refused() const { return refused_; }
    int stored() const { return stored_; }  // PUTs taken

  private:
    bool signed_well(const httplib::Request& req) const {
        const std::string date = req.get_header_value("x-amz-date");
        const std::string payload = req.get_header_value("x-amz-content-sha256");
        const std::string host = req.get_header_value("Host");
        const std::string given = req.get_header_value("Authorization");
        if (date.size() != 16 || payload.empty() || host.empty() || given.empty()) return false;
        const auto expected = client::sign_v4(credentials_, {"us-east-1", "s3", date}, req.method,
                                              host, req.path, {}, payload);
        for (const auto& [name, value] : expected)
            if (name == "Authorization") return value == given;
        return false;
    }

    std::string bucket_, root_;
    client::AwsCredentials credentials_;
    httplib::Server server_;
    int port_ = 0;
    std::atomic<int> served_{0}, refused_{0}, stored_{0};
    std::jthread thread_;
};

}  // namespace ember::testing
