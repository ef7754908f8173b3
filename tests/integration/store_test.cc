// Restores from a store served over HTTP by a real web server (nginx, started by the test): each
// chunk fetched once across restores through the host's cache, counted in the server's own log; a
// chunk served corrupt asked for again, then refused; a server that dies mid-restore ending the
// restore within its bound, with the reason. The folder store and the handler's other faults are
// in uffd_test.cc.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <string>

#include "snapshot/store/manifest.h"
#include "tests/support/fake_s3.h"
#include "tests/support/netns.h"
#include "tests/support/nginx_server.h"
#include "tests/support/uffd_snapshot.h"

namespace ember::testing {
namespace {

class HttpStore : public UffdSnapshot {
  protected:
    std::string store() const { return files.path() + "/store"; }
    std::vector<std::string> handler(const Nginx& web, bool cache) const {
        std::vector<std::string> argv = {
            EMBER_UFFD,      "--socket", sock, "--manifest", web.url() + "/snapshots/fn.json",
            "--write-state", fetched};
        if (cache) argv.insert(argv.end(), {"--cache", files.path() + "/cache"});
        return argv;
    }
    std::vector<std::string> memory_chunks() const {
        auto m = snapshot::parse_manifest(read_file(store() + "/snapshots/fn.json"));
        EXPECT_TRUE(m) << (m ? "" : m.error().message);
        std::vector<std::string> out;
        if (m)
            for (const auto& c : m->memory.chunks)
                if (c) out.push_back(c->hex());
        return out;
    }
    std::vector<std::string> packs() const {
        auto m = snapshot::parse_manifest(read_file(store() + "/snapshots/fn.json"));
        std::vector<std::string> out;
        if (m)
            for (const auto& p : m->packs) out.push_back(p.id.hex());
        return out;
    }
    std::string fetched = files.path() + "/fetched.state";
};

TEST_F(HttpStore, TwoRestoresThroughTheCacheFetchEachChunkOnceFromTheServer) {
    record_working_set();
    push("fn", true);
    Nginx web(files, store());
    ASSERT_TRUE(web.ready()) << web.error_log();
    for (int round = 0; round < 2; ++round) {
        Handler h(files, handler(web, true));
        ASSERT_TRUE(wait_exists(sock));
        one_round_through_the_handler(fetched);
        ASSERT_EQ(h.wait(), 0) << read_file(h.err);
        if (round == 0) {
            EXPECT_GT(count_before(read_file(h.err), "of them ahead for the working set"), 0u)
                << read_file(h.err);
            // Every chunk of it from the pack's ranges (an empty cache), none alone.
            EXPECT_GT(count_before(read_file(h.err), "reads of its packs"), 0u) << read_file(h.err);
            EXPECT_EQ(count_before(read_file(h.err), "of those from"),
                      count_before(read_file(h.err), "of them ahead for the working set"))
                << read_file(h.err);
        }
    }
    for (const auto& c : memory_chunks()) {
        const int n = web.requests("GET /chunks/" + c);
        EXPECT_LE(n, 1) << "chunk " << c << " fetched " << n << " times";
    }
    // The working set came from its pack, read a range at a time by the first restore alone.
    ASSERT_EQ(packs().size(), 1u);
    EXPECT_GT(web.requests("GET /chunks/" + packs()[0]), 0);
    EXPECT_EQ(web.requests("GET /snapshots/fn.json"), 2);
}

TEST_F(HttpStore, AChunkServedCorruptIsAskedForAgainThenTheRestoreEndsWithItsName) {
    push("fn", false);
    for (const auto& c : memory_chunks()) corrupt_first_byte(store() + "/chunks/" + c);
    Nginx web(files, store());
    ASSERT_TRUE(web.ready()) << web.error_log();
    Handler h(files, handler(web, true));
    ASSERT_TRUE(wait_exists(sock));
    const std::string err = restore_that_fails(h, fetched);
    std::smatch m;
    ASSERT_TRUE(std::regex_search(err, m, std::regex("chunk ([0-9a-f]{64}) is corrupt"))) << err;
    EXPECT_NE(err.find("(asked for 3 times)"), std::string::npos) << err;
    EXPECT_EQ(web.requests("GET /chunks/" + m[1].str()), 3);
}

TEST_F(HttpStore, AServerThatDiesMidRestoreEndsItWithTheReason) {
    push("fn", false);
    Nginx web(files, store());
    ASSERT_TRUE(web.ready()) << web.error_log();
    Handler h(files, handler(web, false));
    ASSERT_TRUE(wait_exists(sock));
    ApiEmber clone;
    auto c = clone.api();
    ASSERT_EQ(call(c, "PUT", "/snapshot/load", uffd_load(false, fetched)).status, 204)
        << clone.log();
    web.stop();
    (void)c.request("PATCH", "/vm", R"({"state": "Resumed"})");
    EXPECT_EQ(h.wait(), 1);
    EXPECT_NE(read_file(h.err).find("(3 tries)"), std::string::npos) << read_file(h.err);
    EXPECT_EQ(clone.wait(), 1);
}

// A network that loses one packet in ten each way between the handler and the server (nftables
// in the test's own network namespace; our hosts' kernels have no netem): TCP sends them again, the
// restore takes longer, and every byte the guest reads is still the snapshot's.
TEST_F(HttpStore, ARestoreOverANetworkThatLosesPacketsIsSlowerNotWrong) {
    ASSERT_TRUE(enter_new_netns());
    record_working_set();
    push("fn", true);
    Nginx web(files, store());
    ASSERT_TRUE(web.ready()) << web.error_log();
    const std::string port = std::to_string(web.port());
    const std::string rules =
        files.write("lossy.nft",
                    "table inet lossy {\n  chain input {\n    type filter hook input priority 0;\n"
                    "    tcp dport " +
                        port +
                        " numgen random mod 10 == 0 counter drop\n"
                        "    tcp sport " +
                        port + " numgen random mod 10 == 0 counter drop\n  }\n}\n");
    auto added = run_process({"/usr/sbin/nft", "-f", rules}, kFailsafe);
    ASSERT_EQ(added.exit_code, 0) << added.err;
    for (int round = 0; round < 2; ++round) {
        Handler h(files, handler(web, false));
        ASSERT_TRUE(wait_exists(sock)) << read_file(h.err);
        one_round_through_the_handler(fetched, round == 0 ? ws : "");
        ASSERT_EQ(h.wait(), 0) << read_file(h.err);
    }
    auto counted = run_process({"/usr/sbin/nft", "list", "table", "inet", "lossy"}, kFailsafe);
    std::smatch m;
    uint64_t dropped = 0;
    for (std::string text = counted.out;
         std::regex_search(text, m, std::regex("counter packets ([0-9]+)")); text = m.suffix())
        dropped += std::stoull(m[1]);
    RecordProperty("packets_dropped", std::to_string(dropped));
    EXPECT_GT(dropped, 0u) << counted.out << "the network lost nothing: the test tested nothing";
}

// ember-store-fetch parses what servers send, so once its store is open every thread of it keeps
// to its seccomp filter, and it still answers.
TEST_F(HttpStore, EveryThreadOfTheFetcherKeepsToItsSeccompFilterOnceItsStoreIsOpen) {
    push("fn", false);
    Nginx web(files, store());
    ASSERT_TRUE(web.ready()) << web.error_log();
    int to_fetcher[2], from_fetcher[2];
    ASSERT_EQ(::pipe2(to_fetcher, O_CLOEXEC), 0);
    ASSERT_EQ(::pipe2(from_fetcher, O_CLOEXEC), 0);
    const pid_t pid = spawn({EMBER_STORE_FETCH, web.url()}, to_fetcher[0], from_fetcher[1], 2);
    ::close(to_fetcher[0]);
    ::close(from_fetcher[1]);
    const std::string ask = "1 GET snapshots/fn.json 1048576\n";
    ASSERT_EQ(::write(to_fetcher[1], ask.data(), ask.size()), static_cast<ssize_t>(ask.size()));
    const std::string manifest = read_file(store() + "/snapshots/fn.json");
    const std::string answer = read_until(from_fetcher[0], manifest, kFailsafe);
    EXPECT_EQ(answer, "1 OK " + std::to_string(manifest.size()) + "\n" + manifest);
    int threads = 0;
    for (const auto& [task, status] : thread_statuses(pid)) {
        EXPECT_NE(status.find("\nSeccomp:\t2\n"), std::string::npos) << task << status;
        ++threads;
    }
    EXPECT_GE(threads, 2) << "its fetchers, at least";
    ::close(to_fetcher[1]);
    const auto status = wait_for_end(pid, kFailsafe);
    ::close(from_fetcher[0]);
    ASSERT_TRUE(status);
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
}

// s3://: every request signed with SigV4 from the environment's credentials, the bucket in the
// path at AWS_ENDPOINT_URL; a wrong secret is S3's 403, which ends the restore with it, untried
// again.
TEST_F(HttpStore, AnS3BucketServesARestoreAndEveryRequestIsSigned) {
    record_working_set();
    push("fn", true);
    FakeS3 s3("fleet-snapshots", store(), {"AKEMBERTEST", "secret/of+the/test", ""});
    ::setenv("AWS_ENDPOINT_URL", s3.url().c_str(), 1);
    ::setenv("AWS_REGION", "us-east-1", 1);
    ::setenv("AWS_ACCESS_KEY_ID", "AKEMBERTEST", 1);
    ::setenv("AWS_SECRET_ACCESS_KEY", "secret/of+the/test", 1);
    const std::vector<std::string> argv = {
        EMBER_UFFD,      "--socket", sock, "--manifest", "s3://fleet-snapshots/snapshots/fn.json",
        "--write-state", fetched};
    {
        Handler h(files, argv);
        ASSERT_TRUE(wait_exists(sock)) << read_file(h.err);
        one_round_through_the_handler(fetched);
        ASSERT_EQ(h.wait(), 0) << read_file(h.err);
        // The working set from its pack, by ranges the bucket answers as S3 does (206).
        EXPECT_GT(count_before(read_file(h.err), "of those from"), 0u) << read_file(h.err);
        EXPECT_EQ(count_before(read_file(h.err), "of those from"),
                  count_before(read_file(h.err), "of them ahead for the working set"))
            << read_file(h.err);
        EXPECT_GT(s3.served(), 2);
        EXPECT_EQ(s3.refused(), 0);
    }
    ::setenv("AWS_SECRET_ACCESS_KEY", "not the secret", 1);
    Handler h(files, argv);
    EXPECT_EQ(h.wait(), 1);
    EXPECT_NE(read_file(h.err).find("the store answered HTTP 403"), std::string::npos)
        << read_file(h.err);
    EXPECT_EQ(s3.refused(), 1) << "a refusal is not tried again";
    for (const char* v :
         {"AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"})
        ::unsetenv(v);
}

// ember-snapshot push s3://: a signed HEAD for each chunk and a signed PUT for each the bucket
// lacks, the manifest last; the bucket then holds what a push into a folder writes, byte for byte,
// and a second push stores nothing. A wrong secret is S3's 403, which ends the push with it and
// leaves no manifest behind.
TEST_F(HttpStore, APushIntoAnS3BucketStoresWhatAFolderPushWritesEachChunkOnce) {
    record_working_set();
    push("fn", true);
    const std::string bucket = files.path() + "/bucket";
    ASSERT_EQ(::mkdir(bucket.c_str(), 0755), 0);
    FakeS3 s3("fleet-snapshots", bucket, {"AKEMBERTEST", "secret/of+the/test", ""});
    ::setenv("AWS_ENDPOINT_URL", s3.url().c_str(), 1);
    ::setenv("AWS_ACCESS_KEY_ID", "AKEMBERTEST", 1);
    ::setenv("AWS_SECRET_ACCESS_KEY", "secret/of+the/test", 1);
    const std::vector<std::string> argv = {EMBER_SNAPSHOT,
                                           "push",
                                           "--snapshot-path",
                                           state,
                                           "--mem-file-path",
                                           mem,
                                           "--working-set",
                                           ws,
                                           "s3://fleet-snapshots/snapshots/fn.json"};
    auto first = run_process(argv, kFailsafe);
    ASSERT_EQ(first.exit_code, 0) << first.err;
    EXPECT_EQ(read_file(bucket + "/snapshots/fn.json"), read_file(store() + "/snapshots/fn.json"));
    std::set<std::string> in_folder, in_bucket;
    for (const auto& e : std::filesystem::directory_iterator(store() + "/chunks"))
        in_folder.insert(e.path().filename());
    for (const auto& e : std::filesystem::directory_iterator(bucket + "/chunks")) {
        in_bucket.insert(e.path().filename());
        EXPECT_EQ(read_file(e.path()),
                  read_file(store() + "/chunks/" + e.path().filename().string()))
            << e.path();
    }
    EXPECT_EQ(in_bucket, in_folder);
    EXPECT_EQ(s3.stored(), static_cast<int>(in_folder.size()) + 1)
        << "each chunk once, and the manifest";
    EXPECT_EQ(s3.refused(), 0);

    auto again = run_process(argv, kFailsafe);
    ASSERT_EQ(again.exit_code, 0) << again.err;
    EXPECT_NE(again.out.find(" 0 stored (0 bytes;"), std::string::npos) << again.out;
    EXPECT_EQ(s3.stored(), static_cast<int>(in_folder.size()) + 2) << "only the manifest again";

    ASSERT_EQ(::unlink((bucket + "/snapshots/fn.json").c_str()), 0);
    ::setenv("AWS_SECRET_ACCESS_KEY", "not the secret", 1);
    auto refused = run_process(argv, kFailsafe);
    EXPECT_EQ(refused.exit_code, 1);
    EXPECT_NE(refused.err.find("the store answered HTTP 403"), std::string::npos) << refused.err;
    EXPECT_NE(::access((bucket + "/snapshots/fn.json").c_str(), F_OK), 0);
    for (const char* v : {"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"})
        ::unsetenv(v);
}

}  // namespace
}  // namespace ember::testing
