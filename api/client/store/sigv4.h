// AWS Signature Version 4 for S3's API (AWS S3, Ceph's RADOS Gateway, any S3-compatible store):
// the headers that sign a request, and the credentials they are signed with, from where AWS's own
// tools look for them (the environment, then the shared credentials file), never a command line.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/base/error.h"

namespace ember::client {

struct AwsCredentials {
    std::string access_key;
    std::string secret_key;
    std::string session_token;  // empty: none
};

using Headers = std::vector<std::pair<std::string, std::string>>;

struct SigningScope {
    std::string_view region;  // us-east-1
    std::string_view service = "s3";
    std::string_view amz_date;  // YYYYMMDDTHHMMSSZ, UTC
};

// The headers to add to a request of `method` on `path` (URI-encoded, no query) at `host`: the
// date, the payload's SHA-256 (hex; "UNSIGNED-PAYLOAD" is S3's word for one not signed), the
// session token where there is one, and Authorization, which signs those and `extra`.
Headers sign_v4(const AwsCredentials& credentials, const SigningScope& scope,
                std::string_view method, std::string_view host, std::string_view path,
                const Headers& extra, std::string_view payload_sha256);

// A body's SHA-256 as SigV4 signs it (x-amz-content-sha256): lower-case hex.
std::string sha256_hex(std::string_view data);

// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN; else the profile AWS_PROFILE
// (default: "default") of AWS_SHARED_CREDENTIALS_FILE (default: ~/.aws/credentials).
Result<AwsCredentials> aws_credentials();

// The current time as SigV4 writes it.
std::string amz_date_now();

}  // namespace ember::client
