#include "api/client/store/store_fetch.h"

#include <httplib.h>

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

std::unique_ptr<httplib::Client> StoreFetcher::connection() {
    {
        std::lock_guard lock(mutex_);
        if (!idle_.empty()) {
            auto c = std::move(idle_.back());
            idle_.pop_back();
            return c;
        }
    }
    auto c = std::make_unique<httplib::Client>(origin_);
    const auto connect = options_.connect;
    c->set_connection_timeout(std::chrono::duration_cast<std::chrono::seconds>(connect).count(),
                              static_cast<time_t>((connect.count() % 1000) * 1000));
    c->set_read_timeout(std::chrono::duration_cast<std::chrono::seconds>(options_.attempt).count());
    c->set_keep_alive(true);
    c->set_decompress(false);
    c->set_follow_location(false);
    return c;
}

void StoreFetcher::give_back(std::unique_ptr<httplib::Client> c) {
    std::lock_guard lock(mutex_);
    idle_.push_back(std::move(c));
}

Result<std::string> StoreFetcher::get(const std::string& path, size_t most) {
    const std::string url = base_ + "/" + path;
    std::string last;
    auto pause = options_.backoff;
    for (int attempt = 0; attempt < options_.tries; ++attempt) {
        if (attempt > 0) {
            std::this_thread::sleep_for(pause);
            pause *= 2;
        }
        auto c = connection();
        std::string body;
        bool too_big = false;
        int status = 0;
        bool answered = false;
        auto error = httplib::Error::Success;
        bool late = false;
        {
            httplib::Client& http = *c;
            auto watch = watchdog_.watch(Watchdog::Clock::now() + options_.attempt,
                                         [&http] { http.stop(); });
            httplib::Headers headers;
            if (s3_) {
                // An object's path is letters, digits and "._-/": nothing to encode.
                static constexpr std::string_view kEmptyPayload =
                    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
                const std::string now = amz_date_now();
                headers.emplace("Host", s3_->host);
                for (auto& [name, value] :
                     sign_v4(s3_->credentials, {s3_->region, "s3", now}, "GET", s3_->host,
                             prefix_ + "/" + path, {}, kEmptyPayload))
                    headers.emplace(std::move(name), std::move(value));
            }
            auto r = c->Get(
                prefix_ + "/" + path, headers,
                [&](const httplib::Response& response) {
                    status = response.status;
                    // The body's room at once, where it says its length and that is in bounds.
                    const std::string length = response.get_header_value("Content-Length");
                    size_t n = 0;
                    const auto [end, ec] =
                        std::from_chars(length.data(), length.data() + length.size(), n);
                    if (status == 200 && ec == std::errc() &&
                        end == length.data() + length.size() && n <= most)
                        body.reserve(n);
                    return status == 200;
                },
                [&](const char* data, size_t length) {
                    if (body.size() + length > most) {
                        too_big = true;
                        return false;
                    }
                    body.append(data, length);
                    return true;
                });
            answered = static_cast<bool>(r);
            error = r.error();
            late = watch.fired();
        }
        if (too_big)
            return fail("GET " + url + ": more than the " + std::to_string(most) +
                        " bytes it may be");
        if (answered && status == 200) {
            give_back(std::move(c));
            return body;
        }
        // What the server says of the object itself is not tried again.
        if (status == 404 || status == 403 || status == 401 || status == 410)
            return fail("GET " + url + ": the store answered HTTP " + std::to_string(status));
        last = late ? "no whole answer within " + std::to_string(options_.attempt.count()) + " ms"
               : status ? "HTTP " + std::to_string(status)
                        : httplib::to_string(error);
    }
    return fail("GET " + url + ": " + last + " (" + std::to_string(options_.tries) + " tries)");
}

}  // namespace ember::client
