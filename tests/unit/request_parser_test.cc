#include "api/server/request_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ember::api {
namespace {

struct Outcome {
    std::vector<ParsedRequest> requests;
    std::string refusal;  // empty unless refused
    bool continued = false;
};

// Feeds `bytes` in pieces of `piece` bytes, as a socket might deliver them.
Outcome parse(const std::string& bytes, size_t piece = 4096, RequestLimits limits = {}) {
    RequestParser parser(limits);
    Outcome out;
    std::string input;
    for (size_t at = 0; at < bytes.size(); at += piece) {
        input += bytes.substr(at, piece);
        for (;;) {
            const auto status = parser.feed(input);
            out.continued |= parser.take_continue_request();
            if (status == RequestParser::Status::Refused) {
                out.refusal = parser.refusal().fault_message;
                return out;
            }
            if (status == RequestParser::Status::NeedMore) break;
            out.requests.push_back(parser.take_request());
            if (input.empty()) break;
        }
    }
    return out;
}

TEST(RequestParser, PipelinedRequestsComeOutWholeWhateverThePieces) {
    const std::string bytes =
        "GET /machine-config?x=1 HTTP/1.1\r\nHost: a\r\n\r\n"
        "PUT /drives/rootfs HTTP/1.1\r\nContent-Length: 7\r\n\r\n{\"a\":1}"
        "PATCH /vm HTTP/1.1\r\ntransfer-encoding: Chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\n"
        "Trailer: t\r\n\r\n"
        "GET / HTTP/1.0\r\n\r\n";
    for (size_t piece : {1, 2, 7, 4096}) {
        const Outcome out = parse(bytes, piece);
        ASSERT_EQ(out.refusal, "") << "piece " << piece;
        ASSERT_EQ(out.requests.size(), 4u) << "piece " << piece;
        EXPECT_EQ(out.requests[0].request.path, "/machine-config");
        EXPECT_EQ(out.requests[1].request.method, "PUT");
        EXPECT_EQ(out.requests[1].request.body, "{\"a\":1}");
        EXPECT_EQ(out.requests[2].request.body, "abcde");
        EXPECT_TRUE(out.requests[2].keep_alive);
        EXPECT_FALSE(out.requests[3].keep_alive) << "HTTP/1.0 closes unless asked not to";
    }
}

TEST(RequestParser, BodiesAreBoundedHoweverTheyAreFramed) {
    RequestLimits limits;
    limits.max_payload = 100;
    EXPECT_NE(parse("PUT / HTTP/1.1\r\nContent-Length: 101\r\n\r\n", 4096, limits)
                  .refusal.find("Request payload with size 101 is larger than the limit of 100"),
              std::string::npos);
    // Chunked: refused at the chunk that crosses the limit, before its data arrives.
    const Outcome chunked = parse("PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n32\r\n" +
                                      std::string(50, 'x') + "\r\n33\r\n",
                                  4096, limits);
    EXPECT_NE(chunked.refusal.find("size 101 is larger than the limit of 100"), std::string::npos)
        << chunked.refusal;
    EXPECT_NE(parse("PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n")
                  .refusal.find("larger than the limit"),
              std::string::npos);
    EXPECT_NE(
        parse("PUT / HTTP/1.1\r\nContent-Encoding: gzip\r\nContent-Length: 1\r\n\r\nx").refusal,
        "");
}

TEST(RequestParser, MalformedFramingIsRefusedWithAReason) {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"GET / HTTP/1.1\r\nX: " + std::string(20000, 'a') + "\r\n\r\n", "Request head is larger"},
        {"GET /" + std::string(20000, 'a'), "Request head is larger"},
        {"GET / HTTP/2.0\r\n\r\n", "Unsupported HTTP version"},
        {"GET noslash HTTP/1.1\r\n\r\n", "Malformed request target"},
        {"G@T / HTTP/1.1\r\n\r\n", "Malformed request line"},
        {"GET / HTTP/1.1\r\n folded\r\n\r\n", "Malformed header line"},
        {"PUT / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", "Invalid Content-Length"},
        {"PUT / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
         "Invalid Content-Length"},
        {"PUT / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
         "both Content-Length and Transfer-Encoding"},
        {"PUT / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", "Transfer-Encoding gzip"},
        {"PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "Malformed chunked body"},
        {"PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n",
         "Malformed chunked body"},
        {"PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + std::string(2000, '1'),
         "Malformed chunked body"},
        {"GET / HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", "GET request cannot have a body."},
    };
    for (const auto& [bytes, reason] : cases) {
        for (size_t piece : {1, 4096}) {
            const Outcome out = parse(bytes, piece);
            EXPECT_NE(out.refusal.find(reason), std::string::npos)
                << bytes.substr(0, 60) << " -> '" << out.refusal << "'";
        }
    }
    RequestLimits few;
    few.max_headers = 2;
    EXPECT_NE(parse("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", 4096, few)
                  .refusal.find("More than 2 headers"),
              std::string::npos);
}

TEST(RequestParser, AClientThatExpectsContinueIsToldOnceItsHeadIsAccepted) {
    const Outcome out =
        parse("PUT / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}");
    EXPECT_TRUE(out.continued);
    ASSERT_EQ(out.requests.size(), 1u);
    EXPECT_FALSE(
        parse("PUT / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 99999\r\n\r\n").continued)
        << "a body over the limit gets the refusal, not an invitation";
}

// RFC 9112 2.2: a bare LF ends a line as CRLF does, in the request line, the headers and the
// empty line alike, whatever pieces the bytes come in.
TEST(RequestParser, BareLineFeedsEndLines) {
    const std::string bytes =
        "GET / HTTP/1.1\nHost: localhost\n\n"
        "PUT /machine-config HTTP/1.1\r\nContent-Length: 2\n\r\n{}"
        "GET /vm/config HTTP/1.1\n\n";
    for (size_t piece : {1u, 3u, 4096u}) {
        const Outcome out = parse(bytes, piece);
        ASSERT_EQ(out.refusal, "") << piece;
        ASSERT_EQ(out.requests.size(), 3u) << piece;
        EXPECT_EQ(out.requests[0].request.path, "/");
        EXPECT_EQ(out.requests[1].request.method, "PUT");
        EXPECT_EQ(out.requests[1].request.body, "{}");
        EXPECT_EQ(out.requests[2].request.path, "/vm/config");
    }
}

}  // namespace
}  // namespace ember::api
