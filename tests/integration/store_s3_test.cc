// A store in a real S3: Ceph's RADOS Gateway on a one-node cluster the test starts
// (tests/support/rados_gateway.h). ember-snapshot push writes into its bucket and ember-uffd
// restores from it, every request signed with SigV4 by ember's signer and checked by the gateway;
// ten clones restored at once through one host cache fetch each chunk once, counted in the
// gateway's log (four under the nested runner); a wrong secret is the gateway's 403, which ends a
// push and a restore with it. The stand-in S3 and the nginx store are in store_test.cc.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "snapshot/store/manifest.h"
#include "tests/support/rados_gateway.h"
#include "tests/support/uffd_snapshot.h"

namespace ember::testing {
namespace {

constexpr const char* kKey = "EMBERTESTACCESSKEY";
constexpr const char* kSecret = "secret/of+the/gateway";
constexpr const char* kManifest = "s3://fleet-snapshots/snapshots/fn.json";

class RadosGatewayStore : public UffdSnapshot {
  protected:
    void SetUp() override {
        UffdSnapshot::SetUp();
        if (HasFatalFailure()) return;
        ASSERT_TRUE(gateway.ready()) << gateway.log();
        ASSERT_TRUE(gateway.make_bucket("fleet-snapshots")) << gateway.log();
        ::setenv("AWS_ENDPOINT_URL", gateway.url().c_str(), 1);
        ::setenv("AWS_REGION", "us-east-1", 1);
        ::setenv("AWS_ACCESS_KEY_ID", kKey, 1);
        ::setenv("AWS_SECRET_ACCESS_KEY", kSecret, 1);
    }
    void TearDown() override {
        for (const char* v :
             {"AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"})
            ::unsetenv(v);
    }
    ProcessResult push_to_gateway() const {
        return run_process({EMBER_SNAPSHOT, "push", "--snapshot-path", state, "--mem-file-path",
                            mem, "--working-set", ws, kManifest},
                           kFailsafe);
    }
    std::vector<std::string> handler(int k) const {
        return {EMBER_UFFD,
                "--socket",
                socket(k),
                "--manifest",
                kManifest,
                "--cache",
                files.path() + "/cache",
                "--write-state",
                fetched(k)};
    }
    std::string socket(int k) const { return files.path() + "/uffd" + std::to_string(k) + ".sock"; }
    std::string fetched(int k) const {
        return files.path() + "/fetched" + std::to_string(k) + ".state";
    }

    RadosGateway gateway{files, kKey, kSecret};
};

// Ten clones at once; two under the nested runner, where the one-node cluster, the handlers with
// their fetchers and the embers under ASan share one emulated core: with ten the gateway answered
// some GETs in more than the fetcher's 15 s (all nested at 3d1d62a), and on a slower host with
// four, its answers outlasted a handler's 30 s wait for another's lock on a chunk, so each clone
// fetched the working set's last chunks itself (stop 79, stop 78's build failing alike).
int clones_at_once() {
    const char* nested = std::getenv("EMBER_NESTED");
    return nested != nullptr && std::string_view(nested) == "1" ? 2 : 10;
}

TEST_F(RadosGatewayStore, APushAndClonesAtOnceFromItFetchEachChunkOnceAllSigned) {
    record_working_set();
    auto pushed = push_to_gateway();
    ASSERT_EQ(pushed.exit_code, 0) << pushed.err << gateway.log();
    auto again = push_to_gateway();
    ASSERT_EQ(again.exit_code, 0) << again.err;
    EXPECT_NE(again.out.find(" 0 stored (0 bytes;"), std::string::npos) << again.out;
    // The same snapshot pushed into a folder names the same chunks: the manifest to count them by.
    push("fn", true);
    auto manifest = snapshot::parse_manifest(read_file(files.path() + "/store/snapshots/fn.json"));
    ASSERT_TRUE(manifest) << manifest.error().message;

    const int count = clones_at_once();
    std::vector<std::unique_ptr<Handler>> handlers;
    for (int k = 0; k < count; ++k)
        handlers.push_back(
            std::make_unique<Handler>(files, handler(k), "handler" + std::to_string(k)));
    for (int k = 0; k < count; ++k)
        ASSERT_TRUE(wait_exists(socket(k))) << read_file(handlers[k]->err);
    {
        std::vector<std::jthread> clones;
        for (int k = 0; k < count; ++k)
            clones.emplace_back(
                [this, k] { one_round_through_the_handler(fetched(k), "", socket(k)); });
    }
    for (auto& h : handlers) EXPECT_EQ(h->wait(), 0) << read_file(h->err);

    int fetched_chunks = 0;
    for (const auto& c : manifest->memory.chunks) {
        if (!c) continue;
        const int n = gateway.requests("\"GET /fleet-snapshots/chunks/" + c->hex());
        EXPECT_LE(n, 1) << "chunk " << c->hex() << " fetched " << n << " times";
        fetched_chunks += n;
    }
    for (const auto& p : manifest->packs)
        fetched_chunks += gateway.requests("\"GET /fleet-snapshots/chunks/" + p.id.hex());
    EXPECT_GT(fetched_chunks, 0);
    EXPECT_EQ(gateway.requests("\"GET /fleet-snapshots/snapshots/fn.json"), count);
    EXPECT_EQ(count_lines_containing(gateway.log(), "\" 403 "), 0) << "every request signed";
}

TEST_F(RadosGatewayStore, AWrongSecretIsTheGateways403WhichEndsAPushAndARestoreWithIt) {
    record_working_set();
    auto pushed = push_to_gateway();
    ASSERT_EQ(pushed.exit_code, 0) << pushed.err << gateway.log();
    ::setenv("AWS_SECRET_ACCESS_KEY", "not the secret", 1);

    auto refused = push_to_gateway();
    EXPECT_EQ(refused.exit_code, 1);
    EXPECT_NE(refused.err.find("the store answered HTTP 403"), std::string::npos) << refused.err;

    Handler h(files, handler(0));
    EXPECT_EQ(h.wait(), 1);
    EXPECT_NE(read_file(h.err).find("the store answered HTTP 403"), std::string::npos)
        << read_file(h.err);
    EXPECT_GE(count_lines_containing(gateway.log(), "\" 403 "), 2) << gateway.log();
}

}  // namespace
}  // namespace ember::testing
