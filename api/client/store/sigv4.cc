#include "api/client/store/sigv4.h"

#include <nettle/hmac.h>
#include <nettle/sha2.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <ctime>
#include <fstream>

namespace ember::client {

namespace {

using Digest = std::array<uint8_t, SHA256_DIGEST_SIZE>;

Digest hmac(std::string_view key, std::string_view data) {
    hmac_sha256_ctx ctx;
    hmac_sha256_set_key(&ctx, key.size(), reinterpret_cast<const uint8_t*>(key.data()));
    hmac_sha256_update(&ctx, data.size(), reinterpret_cast<const uint8_t*>(data.data()));
    Digest out;
    hmac_sha256_digest(&ctx, out.size(), out.data());
    return out;
}

std::string_view view(const Digest& d) {
    return {reinterpret_cast<const char*>(d.data()), d.size()};
}

std::string hex(std::string_view bytes) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (unsigned char b : bytes) {
        out.push_back(kDigits[b >> 4]);
        out.push_back(kDigits[b & 0xf]);
    }
    return out;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string trimmed(std::string_view s) {
    const size_t a = s.find_first_not_of(" \t");
    if (a == std::string_view::npos) return {};
    const size_t b = s.find_last_not_of(" \t");
    return std::string(s.substr(a, b - a + 1));
}

}  // namespace

std::string sha256_hex(std::string_view data) {
    sha256_ctx ctx;
    sha256_init(&ctx);
    sha256_update(&ctx, data.size(), reinterpret_cast<const uint8_t*>(data.data()));
    Digest out;
    sha256_digest(&ctx, out.size(), out.data());
    return hex(view(out));
}

Headers sign_v4(const AwsCredentials& credentials, const SigningScope& scope,
                std::string_view method, std::string_view host, std::string_view path,
                const Headers& extra, std::string_view payload_sha256) {
    Headers added = {{"x-amz-date", std::string(scope.amz_date)},
                     {"x-amz-content-sha256", std::string(payload_sha256)}};
    if (!credentials.session_token.empty())
        added.emplace_back("x-amz-security-token", credentials.session_token);
    Headers signed_headers = {{"host", std::string(host)}};
    for (const auto& [name, value] : extra)
        signed_headers.emplace_back(lower(name), trimmed(value));
    for (const auto& [name, value] : added) signed_headers.emplace_back(name, value);
    std::sort(signed_headers.begin(), signed_headers.end());

    std::string canonical = std::string(method) + "\n" + std::string(path) + "\n\n";
    std::string names;
    for (const auto& [name, value] : signed_headers) {
        canonical.append(name).append(":").append(value).append("\n");
        names.append(names.empty() ? "" : ";").append(name);
    }
    canonical.append("\n").append(names).append("\n").append(payload_sha256);

    const std::string_view date = scope.amz_date.substr(0, 8);
    std::string credential_scope(date);
    credential_scope.append("/").append(scope.region).append("/").append(scope.service);
    credential_scope.append("/aws4_request");
    std::string to_sign = "AWS4-HMAC-SHA256\n";
    to_sign.append(scope.amz_date).append("\n").append(credential_scope).append("\n");
    to_sign.append(sha256_hex(canonical));

    const Digest k_date = hmac("AWS4" + credentials.secret_key, date);
    const Digest k_region = hmac(view(k_date), scope.region);
    const Digest k_service = hmac(view(k_region), scope.service);
    const Digest k_signing = hmac(view(k_service), "aws4_request");
    const std::string signature = hex(view(hmac(view(k_signing), to_sign)));

    std::string authorization = "AWS4-HMAC-SHA256 Credential=";
    authorization.append(credentials.access_key).append("/").append(credential_scope);
    authorization.append(",SignedHeaders=").append(names).append(",Signature=").append(signature);
    added.emplace_back("Authorization", std::move(authorization));
    return added;
}

Result<AwsCredentials> aws_credentials() {
    const char* key = std::getenv("AWS_ACCESS_KEY_ID");
    const char* secret = std::getenv("AWS_SECRET_ACCESS_KEY");
    if (key != nullptr && secret != nullptr && *key != '\0' && *secret != '\0') {
        const char* token = std::getenv("AWS_SESSION_TOKEN");
        return AwsCredentials{key, secret, token != nullptr ? token : ""};
    }
    std::string file;
    if (const char* f = std::getenv("AWS_SHARED_CREDENTIALS_FILE"); f != nullptr && *f != '\0')
        file = f;
    else if (const char* home = std::getenv("HOME"); home != nullptr)
        file = std::string(home) + "/.aws/credentials";
    const char* profile_env = std::getenv("AWS_PROFILE");
    const std::string profile =
        profile_env != nullptr && *profile_env != '\0' ? profile_env : "default";
    std::ifstream in(file);
    if (!in)
        return fail("no S3 credentials: neither AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY nor " +
                    (file.empty() ? std::string("a credentials file") : file));
    AwsCredentials c;
    std::string line;
    bool in_profile = false;
    for (int lines = 0; std::getline(in, line) && lines < 10000; ++lines) {
        const std::string t = trimmed(line);
        if (t.starts_with("[")) {
            in_profile = t == "[" + profile + "]";
            continue;
        }
        const size_t eq = t.find('=');
        if (!in_profile || eq == std::string::npos) continue;
        const std::string name = trimmed(std::string_view(t).substr(0, eq));
        const std::string value = trimmed(std::string_view(t).substr(eq + 1));
        if (name == "aws_access_key_id") c.access_key = value;
        if (name == "aws_secret_access_key") c.secret_key = value;
        if (name == "aws_session_token") c.session_token = value;
    }
    if (c.access_key.empty() || c.secret_key.empty())
        return fail("no S3 credentials for profile '" + profile + "' in " + file);
    return c;
}

std::string amz_date_now() {
    const std::time_t now = std::time(nullptr);
    std::tm utc{};
    ::gmtime_r(&now, &utc);
    char out[17];
    std::strftime(out, sizeof out, "%Y%m%dT%H%M%SZ", &utc);
    return out;
}

}  // namespace ember::client
