// Reading a snapshot store over HTTP or HTTPS (a web server, a CDN, an object store's public
// endpoint), or from an S3 bucket (s3://BUCKET/PREFIX: AWS S3, or any S3-compatible store at
// AWS_ENDPOINT_URL, addressed by path there), every request signed with SigV4: a GET per object,
// bounded in bytes and in time, tried again a bounded number of times when the network or the
// server fails (never when the server says the object is not there or not the caller's); and, for
// a push, a HEAD and a PUT of an object. ember-store-fetch serves a page-fault handler's requests
// (and a push's) with it, so that only a restore from a remote store pays for cpp-httplib and
// OpenSSL.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/client/store/sigv4.h"
#include "api/client/watchdog.h"
#include "core/base/error.h"

namespace httplib {
class Client;
}

namespace ember::client {

// What an answer may hold beyond its body's bound: its status line and headers.
inline constexpr size_t kMostHeaderBytes = size_t{1} << 20;

struct FetchOptions {
    std::chrono::milliseconds connect{2000};
    std::chrono::milliseconds attempt{15000};  // one try, connect to the last byte
    int tries = 3;
    std::chrono::milliseconds backoff{200};  // before the second try; doubled for each next
};

class StoreFetcher {
  public:
    // `base`: http://HOST[:PORT][/PREFIX] or https://...; objects are PREFIX/PATH. Or
    // s3://BUCKET[/PREFIX], with the region from AWS_REGION (or AWS_DEFAULT_REGION; us-east-1
    // where neither is set), the endpoint from AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL (AWS's own
    // where neither is), and the credentials from aws_credentials().
    static Result<std::unique_ptr<StoreFetcher>> open(std::string_view base, FetchOptions options);
    ~StoreFetcher();
    StoreFetcher(const StoreFetcher&) = delete;
    StoreFetcher& operator=(const StoreFetcher&) = delete;

    // The object at PATH (relative to the base), at most `most` bytes. Safe from several threads,
    // as are has() and put(): each call takes an idle connection or opens one.
    Result<std::string> get(const std::string& path, size_t most);
    // Bytes `offset` to `offset + length` of the object at PATH, exactly (a GET with Range,
    // answered 206).
    Result<std::string> get_range(const std::string& path, uint64_t offset, size_t length);
    // Whether the store holds an object at PATH (a HEAD).
    Result<bool> has(const std::string& path);
    // `body` as the object at PATH (a PUT: an S3 bucket takes one, as does a web server that
    // takes WebDAV's), signed with its SHA-256 for S3.
    Result<void> put(const std::string& path, std::string_view body);

    const std::string& base() const { return base_; }

  private:
    struct S3 {
        std::string host;  // as the Host header says it, and as signed
        std::string region;
        AwsCredentials credentials;
    };
    struct Reply {
        int status = 0;
        std::string body;
    };
    StoreFetcher(std::string base, std::string origin, std::string prefix, FetchOptions options);
    // One request, tried again where the network or the server failed (never where the server
    // says the object is not there or not the caller's: 401, 403, 404, 410, which it answers):
    // its status and, for a GET, its body of at most `most` bytes (of `range`, a Range header's
    // value, where one is given).
    Result<Reply> exchange(std::string_view method, const std::string& path, std::string_view body,
                           size_t most, std::string_view range = {});
    static Result<std::unique_ptr<StoreFetcher>> open_s3(std::string_view base,
                                                         FetchOptions options);
    // A client and the socket it has open now (set by cpp-httplib as it connects), whose bytes
    // the watchdog counts while a request runs.
    struct Socket {
        std::atomic<int> fd{-1};
        std::atomic<uint64_t> connects{0};
    };
    struct Connection {
        std::unique_ptr<httplib::Client> http;
        std::shared_ptr<Socket> socket;
    };
    Connection connection();
    void give_back(Connection c);

    std::string base_, origin_, prefix_;
    FetchOptions options_;
    std::optional<S3> s3_;
    Watchdog watchdog_;
    std::mutex mutex_;
    std::vector<Connection> idle_;
};

}  // namespace ember::client
