// AWS Signature Version 4 against AWS's own worked example, and where credentials come from.
#include "api/client/store/sigv4.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include "tests/support/ember_process.h"

namespace ember::client {
namespace {

std::string header(const Headers& h, const std::string& name) {
    for (const auto& [n, v] : h)
        if (n == name) return v;
    return "";
}

// S3's documentation, "Example: GET Object": the first ten bytes of examplebucket's test.txt.
TEST(SigV4, SignsAwsExampleGetObject) {
    const AwsCredentials c{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};
    const std::string empty_sha256 =
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const Headers h =
        sign_v4(c, {"us-east-1", "s3", "20130524T000000Z"}, "GET", "examplebucket.s3.amazonaws.com",
                "/test.txt", {{"Range", "bytes=0-9"}}, empty_sha256);
    EXPECT_EQ(header(h, "Authorization"),
              "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
              "aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
              "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    EXPECT_EQ(header(h, "x-amz-date"), "20130524T000000Z");
    EXPECT_EQ(header(h, "x-amz-content-sha256"), empty_sha256);
    EXPECT_EQ(header(h, "x-amz-security-token"), "");

    const Headers with_token =
        sign_v4({c.access_key, c.secret_key, "token"}, {"us-east-1", "s3", "20130524T000000Z"},
                "GET", "examplebucket.s3.amazonaws.com", "/test.txt", {}, empty_sha256);
    EXPECT_EQ(header(with_token, "x-amz-security-token"), "token");
    EXPECT_NE(header(with_token, "Authorization").find("x-amz-date;x-amz-security-token"),
              std::string::npos);
}

TEST(SigV4, CredentialsComeFromTheEnvironmentThenTheSharedFile) {
    testing::TempDir dir;
    const std::string file = dir.write("credentials",
                                       "[default]\naws_access_key_id = AKDEFAULT\n"
                                       "aws_secret_access_key = sdefault\n\n[fleet]\n"
                                       "aws_access_key_id=AKFLEET\naws_secret_access_key=sfleet\n"
                                       "aws_session_token = tfleet\n");
    ::unsetenv("AWS_ACCESS_KEY_ID");
    ::unsetenv("AWS_SECRET_ACCESS_KEY");
    ::setenv("AWS_SHARED_CREDENTIALS_FILE", file.c_str(), 1);
    ::setenv("AWS_PROFILE", "fleet", 1);
    auto c = aws_credentials();
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_EQ(c->access_key, "AKFLEET");
    EXPECT_EQ(c->session_token, "tfleet");
    ::unsetenv("AWS_PROFILE");
    c = aws_credentials();
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_EQ(c->access_key, "AKDEFAULT");
    ::setenv("AWS_ACCESS_KEY_ID", "AKENV", 1);
    ::setenv("AWS_SECRET_ACCESS_KEY", "senv", 1);
    c = aws_credentials();
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_EQ(c->access_key, "AKENV");
    ::unsetenv("AWS_ACCESS_KEY_ID");
    ::unsetenv("AWS_SECRET_ACCESS_KEY");
    ::setenv("AWS_PROFILE", "nobody", 1);
    auto none = aws_credentials();
    ASSERT_FALSE(none);
    EXPECT_NE(none.error().message.find("no S3 credentials for profile 'nobody'"),
              std::string::npos);
    ::unsetenv("AWS_PROFILE");
    ::unsetenv("AWS_SHARED_CREDENTIALS_FILE");
    EXPECT_EQ(amz_date_now().size(), 16u);
}

}  // namespace
}  // namespace ember::client
