#include "api/client/store/store_fetch.h"

#include "api/client/store/received_bytes.h"

#include <httplib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <charconv>
#include <cstdlib>
#include <thread>

namespace ember::client {

Result<std::unique_ptr<StoreFetcher>> StoreFetcher::open(std::string_view base,
                                                         FetchOptions options) {
    const std::string shown(base.substr(0, 300));
    size_t scheme_end = 0;
    if (base.starts_with("http://"))
        scheme_end = 7;
    else if (base.starts_with("https://"))
        scheme_end = 8;
    else if (base.starts_with("s3://"))
        return open_s3(base, options);
    else
        return fail("store '" + shown + "': not an http://, https:// or s3:// URL");
    const size_t slash = base.find('/', scheme_end);
    const std::string origin(base.substr(0, slash));
    std::string prefix = slash == std::string_view::npos ? "" : std::string(base.substr(slash));
    while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
    if (origin.size() == scheme_end || base.find_first_of(" ?#\r\n\t") != std::string_view::npos)
        return fail("store '" + shown + "': no host, or a character a base URL does not hold");
    return std::unique_ptr<StoreFetcher>(
        new StoreFetcher(std::string(base), origin, prefix, options));  // NOLINT: private
}

Result<std::unique_ptr<StoreFetcher>> StoreFetcher::open_s3(std::string_view base,
                                                            FetchOptions options) {
    const std::string shown(base.substr(0, 300));
    const std::string_view rest = base.substr(5);
    const size_t slash = rest.find('/');
    const std::string bucket(rest.substr(0, slash));
    std::string prefix = slash == std::string_view::npos ? "" : std::string(rest.substr(slash));
    while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
    // S3's own rules for a bucket's name, which then goes into a host name or a path unencoded.
    if (bucket.size() < 3 || bucket.size() > 63 ||
        bucket.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789.-") != std::string::npos ||
        prefix.find_first_not_of(
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/") !=
            std::string::npos)
        return fail("store '" + shown + "': not s3://BUCKET[/PREFIX] with a bucket S3 names");
    auto credentials = aws_credentials();
    EMBER_TRY(credentials, "store '" + shown + "'");
    auto env = [](const char* name) -> std::string {
        const char* v = std::getenv(name);
        return v != nullptr ? v : "";
    };
    std::string region = env("AWS_REGION");
    if (region.empty()) region = env("AWS_DEFAULT_REGION");
    if (region.empty()) region = "us-east-1";
    std::string endpoint = env("AWS_ENDPOINT_URL_S3");
    if (endpoint.empty()) endpoint = env("AWS_ENDPOINT_URL");
    while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();
    std::string origin;
    if (endpoint.empty()) {
        origin = "https://" + bucket + ".s3." + region + ".amazonaws.com";
    } else {
        // A store of one's own (Ceph's RADOS Gateway, MinIO): the bucket goes in the path.
        if (!endpoint.starts_with("http://") && !endpoint.starts_with("https://"))
            return fail("AWS_ENDPOINT_URL '" + endpoint.substr(0, 300) +
                        "': not an http:// or https:// URL");
        origin = endpoint;
        prefix = "/" + bucket + prefix;
    }
    auto fetcher = std::unique_ptr<StoreFetcher>(
        new StoreFetcher(std::string(base), origin, prefix, options));  // NOLINT: private
    fetcher->s3_ = S3{origin.substr(origin.find("://") + 3), region, std::move(*credentials)};
    return fetcher;
}

StoreFetcher::StoreFetcher(std::string base, std::string origin, std::string prefix,
                           FetchOptions options)
    : base_(std::move(base)),
      origin_(std::move(origin)),
      prefix_(std::move(prefix)),
      options_(options) {}

StoreFetcher::~StoreFetcher() = default;

StoreFetcher::Connection StoreFetcher::connection() {
    {
        std::lock_guard lock(mutex_);
        if (!idle_.empty()) {
            auto c = std::move(idle_.back());
            idle_.pop_back();
            return c;
        }
    }
    Connection c;
    c.socket = std::make_shared<Socket>();
    c.http = std::make_unique<httplib::Client>(origin_);
    const auto connect = options_.connect;
    c.http->set_connection_timeout(
        std::chrono::duration_cast<std::chrono::seconds>(connect).count(),
        static_cast<time_t>((connect.count() % 1000) * 1000));
    c.http->set_read_timeout(
        std::chrono::duration_cast<std::chrono::seconds>(options_.attempt).count());
    c.http->set_keep_alive(true);
    c.http->set_decompress(false);
    c.http->set_follow_location(false);
    // TCP_NODELAY: a PUT goes out as its headers, then its body; with Nagle's algorithm a body
    // shorter than a segment (a chunk that compressed well, a manifest) would wait for the
    // server's delayed ACK of the headers, tens of ms an object.
    c.http->set_socket_options([socket = c.socket](int fd) {
        const int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        socket->fd.store(fd);
        socket->connects.fetch_add(1);
    });
    return c;
}

void StoreFetcher::give_back(Connection c) {
    std::lock_guard lock(mutex_);
    idle_.push_back(std::move(c));
}

Result<StoreFetcher::Reply> StoreFetcher::exchange(std::string_view method, const std::string& path,
                                                   std::string_view body, size_t most,
                                                   std::string_view range) {
    // A GET's answer with its body: the whole object's, or the range's. A server may answer a
    // range with the whole object (200), which is the range where it starts at 0 and is no longer
    // than `most`.
    const int full = range.empty() ? 200 : 206;
    const bool whole_will_do = range.starts_with("bytes=0-");
    const std::string url = base_ + "/" + path;
    const std::string what = std::string(method) + " " + url;
    std::string last;
    auto pause = options_.backoff;
    for (int attempt = 0; attempt < options_.tries; ++attempt) {
        if (attempt > 0) {
            std::this_thread::sleep_for(pause);
            pause *= 2;
        }
        auto c = connection();
        Reply reply;
        bool too_big = false;
        bool overran = false;
        bool answered = false;
        auto error = httplib::Error::Success;
        bool late = false;
        {
            httplib::Client& http = *c.http;
            // The answer's bytes as a whole, headers and all, counted on its socket (a new one
            // where the client connects again): cpp-httplib bounds a header line, not their count.
            Socket& socket = *c.socket;
            const uint64_t connects = socket.connects.load();
            const uint64_t before = received_bytes(socket.fd.load());
            const uint64_t bound = most + kMostHeaderBytes;
            auto watch = watchdog_.watch(
                Watchdog::Clock::now() + options_.attempt, [&http] { http.stop(); },
                [&socket, &overran, connects, before, bound] {
                    const uint64_t since = socket.connects.load() == connects ? before : 0;
                    const uint64_t now = received_bytes(socket.fd.load());
                    // A socket closed as the call ends counts nothing: not an overrun.
                    overran = now > since && now - since > bound;
                    return overran;
                });
            httplib::Headers headers;
            if (s3_) {
                // An object's path is letters, digits and "._-/": nothing to encode.
                const std::string now = amz_date_now();
                headers.emplace("Host", s3_->host);
                for (auto& [name, value] :
                     sign_v4(s3_->credentials, {s3_->region, "s3", now}, method, s3_->host,
                             prefix_ + "/" + path, {}, sha256_hex(body)))
                    headers.emplace(std::move(name), std::move(value));
            }
            if (!range.empty()) headers.emplace("Range", std::string(range));
            auto r = [&] {
                if (method == "HEAD") return http.Head(prefix_ + "/" + path, headers);
                if (method == "PUT")
                    return http.Put(prefix_ + "/" + path, headers, body.data(), body.size(),
                                    "application/octet-stream");
                return http.Get(
                    prefix_ + "/" + path, headers,
                    [&](const httplib::Response& response) {
                        reply.status = response.status;
                        // The body's room at once, where it says its length and that is in
                        // bounds.
                        const std::string length = response.get_header_value("Content-Length");
                        size_t n = 0;
                        const auto [end, ec] =
                            std::from_chars(length.data(), length.data() + length.size(), n);
                        const bool takes_body =
                            reply.status == full || (whole_will_do && reply.status == 200);
                        if (takes_body && ec == std::errc() &&
                            end == length.data() + length.size() && n <= most)
                            reply.body.reserve(n);
                        return takes_body;
                    },
                    [&](const char* data, size_t length) {
                        if (reply.body.size() + length > most) {
                            too_big = true;
                            return false;
                        }
                        reply.body.append(data, length);
                        return true;
                    });
            }();
            answered = static_cast<bool>(r);
            error = r.error();
            if (answered && method != "GET") reply.status = r->status;
            late = watch.fired();
        }
        if (too_big)
            return fail(what + ": more than the " + std::to_string(most) + " bytes it may be");
        if (overran && late)  // not tried again: a server that sends that much is not failing
            return fail(what + ": an answer of more than " +
                        std::to_string(most + kMostHeaderBytes) +
                        " bytes, headers and all, where its body may be " + std::to_string(most));
        const int status = reply.status;
        const bool whole = answered && !late;  // a GET that is not a 200 was cut short
        // A server that answers a range with the whole object (200) reads no ranges: asking again
        // would not change that.
        const bool final = status == 404 || status == 403 || status == 401 || status == 410 ||
                           (!range.empty() && !whole_will_do && status == 200) || status == 416;
        if (whole && ((status >= 200 && status < 300) || final)) {
            give_back(std::move(c));
            return reply;
        }
        // What the server says of the object itself is not tried again.
        if (final) return reply;
        last = late ? "no whole answer within " + std::to_string(options_.attempt.count()) + " ms"
               : status ? "HTTP " + std::to_string(status)
                        : httplib::to_string(error);
    }
    return fail(what + ": " + last + " (" + std::to_string(options_.tries) + " tries)");
}

Result<std::string> StoreFetcher::get(const std::string& path, size_t most) {
    auto reply = exchange("GET", path, {}, most);
    EMBER_TRY(reply);
    if (reply->status != 200)
        return fail("GET " + base_ + "/" + path + ": the store answered HTTP " +
                    std::to_string(reply->status));
    return std::move(reply->body);
}

Result<std::string> StoreFetcher::get_range(const std::string& path, uint64_t offset,
                                            size_t length) {
    if (length == 0 || offset > UINT64_MAX - length)
        return fail("GET " + base_ + "/" + path +
                    ": a range of no bytes, or past any object's end");
    const std::string range =
        "bytes=" + std::to_string(offset) + "-" + std::to_string(offset + length - 1);
    auto reply = exchange("GET", path, {}, length, range);
    EMBER_TRY(reply);
    if (reply->status != 206 && !(reply->status == 200 && offset == 0))
        return fail("GET " + base_ + "/" + path + " (" + range + "): the store answered HTTP " +
                    std::to_string(reply->status) +
                    (reply->status == 200 ? ", the whole object: it reads no ranges" : ""));
    if (reply->body.size() != length)
        return fail("GET " + base_ + "/" + path + " (" + range +
                    "): " + std::to_string(reply->body.size()) + " bytes");
    return std::move(reply->body);
}

Result<bool> StoreFetcher::has(const std::string& path) {
    auto reply = exchange("HEAD", path, {}, 0);
    EMBER_TRY(reply);
    if (reply->status == 404) return false;
    if (reply->status != 200)
        return fail("HEAD " + base_ + "/" + path + ": the store answered HTTP " +
                    std::to_string(reply->status));
    return true;
}

Result<void> StoreFetcher::put(const std::string& path, std::string_view body) {
    auto reply = exchange("PUT", path, body, 0);
    EMBER_TRY(reply);
    if (reply->status < 200 || reply->status >= 300)
        return fail("PUT " + base_ + "/" + path + ": the store answered HTTP " +
                    std::to_string(reply->status));
    return {};
}

}  // namespace ember::client
