#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>

#include "snapshot/store/chunk_id.h"
#include "snapshot/store/directory_store.h"
#include "snapshot/store/manifest.h"
#include "snapshot/store/store_collect.h"
#include "tests/support/ember_process.h"

namespace ember::snapshot {
namespace {

using namespace std::chrono_literals;

std::vector<uint8_t> chunk_of(uint8_t seed, size_t length = 4096) {
    std::vector<uint8_t> bytes(length);
    for (size_t i = 0; i < length; ++i) bytes[i] = static_cast<uint8_t>(seed * 31 + i * 7 + 1);
    return bytes;
}

class StoreCollect : public ::testing::Test {
  protected:
    void SetUp() override {
        auto opened = DirectoryStore::open(root(), true);
        ASSERT_TRUE(opened) << opened.error().message;
        store_.emplace(std::move(*opened));
    }
    std::string root() const { return dir_.path() + "/store"; }
    std::string path_of(const std::string& name) const { return root() + "/chunks/" + name; }
    DirectoryStore& store() { return *store_; }

    ChunkId put(const std::vector<uint8_t>& bytes) {
        const ChunkId id = chunk_id_of(bytes);
        auto stored = store_->put(id, bytes, bytes.size());
        EXPECT_TRUE(stored) << stored.error().message;
        return id;
    }
    // A manifest of 4 KiB chunks whose state file is `state` (one chunk of 100 bytes) and whose
    // memory is `memory`, a chunk each, every one of them put into the store.
    Manifest manifest_of(const std::vector<uint8_t>& state,
                         const std::vector<std::vector<uint8_t>>& memory) {
        Manifest m;
        m.chunk_size = 4096;
        m.state = {100, {put(state)}};
        m.memory.bytes = 4096 * memory.size();
        for (const auto& chunk : memory) m.memory.chunks.emplace_back(put(chunk));
        return m;
    }
    bool holds(const std::string& name) const { return ::access(path_of(name).c_str(), F_OK) == 0; }
    bool holds(const ChunkId& id) const { return holds(id.hex()); }
    // Everything under chunks/ two hours old.
    void age_all() const {
        for (const auto& e : std::filesystem::directory_iterator(root() + "/chunks")) age(e.path());
    }
    static void age(const std::filesystem::path& path) {
        const timespec old{.tv_sec = ::time(nullptr) - 7200, .tv_nsec = 0};
        const timespec times[2] = {old, old};
        ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0) << path;
    }
    Result<CollectCounts> collect(bool dry_run = false) {
        return collect_store(*store_, {.older_than = 1h, .dry_run = dry_run});
    }

    testing::TempDir dir_;
    std::optional<DirectoryStore> store_;
};

// Two snapshots, one a function's pushed onto the other's (a runtime's): with the runtime's
// manifest gone, what it alone named goes, while the function keeps the runtime's chunk under its
// patch.
TEST_F(StoreCollect, WhatNoManifestNamesGoesAndWhatOneNamesStaysEvenUnderAPatch) {
    const auto m0 = chunk_of(1), m1 = chunk_of(2), m2 = chunk_of(3), page = chunk_of(4);
    const auto runtime_state = chunk_of(5, 100), fn_state = chunk_of(6, 100), disk = chunk_of(8);
    std::vector<uint8_t> pack_bytes = m0;
    pack_bytes.insert(pack_bytes.end(), m1.begin(), m1.end());

    Manifest runtime = manifest_of(runtime_state, {m0, m1});
    runtime.working_set = {{0, 2, false}};
    runtime.packs = {{put(pack_bytes),
                      {{chunk_id_of(m0), 4096, 4096, std::nullopt},
                       {chunk_id_of(m1), 4096, 4096, std::nullopt}}}};
    Manifest fn = manifest_of(fn_state, {m0, m2});
    fn.memory.patches.emplace(0, ChunkPatch{put(page), {{0, 1}}});
    fn.drives = {{"rootfs", {8192, {std::nullopt, put(disk)}}}};
    ASSERT_TRUE(store().put_manifest("runtime", encode_manifest(runtime)));
    ASSERT_TRUE(store().put_manifest("fn", encode_manifest(fn)));
    const ChunkId orphan = put(chunk_of(7));
    age_all();

    auto both = collect();
    ASSERT_TRUE(both) << both.error().message;
    EXPECT_EQ(both->manifests, 2u);
    EXPECT_EQ(both->objects, 9u);
    EXPECT_EQ(both->named, 8u);
    EXPECT_EQ(both->removed, 1u) << "the object no manifest ever named";
    EXPECT_EQ(both->removed_bytes, 4096u);
    EXPECT_FALSE(holds(orphan));

    ASSERT_EQ(::unlink((root() + "/snapshots/runtime.json").c_str()), 0);
    auto fn_only = collect();
    ASSERT_TRUE(fn_only) << fn_only.error().message;
    EXPECT_EQ(fn_only->manifests, 1u);
    EXPECT_EQ(fn_only->named, 5u);
    EXPECT_EQ(fn_only->removed, 3u)
        << "the runtime's state, its chunk the function lacks, its pack";
    EXPECT_EQ(fn_only->removed_bytes, 100u + 4096u + 8192u);
    EXPECT_EQ(fn_only->young, 0u);
    EXPECT_FALSE(holds(runtime.state.chunks[0].value()));
    EXPECT_FALSE(holds(chunk_id_of(m1)));
    EXPECT_FALSE(holds(runtime.packs[0].id));
    // What the function names reads back whole, the base under its patch among it.
    EXPECT_TRUE(store().get(chunk_id_of(m0), 4096));
    EXPECT_TRUE(store().get(chunk_id_of(m2), 4096));
    EXPECT_TRUE(store().get(chunk_id_of(page), 4096));
    EXPECT_TRUE(store().get(chunk_id_of(fn_state), 100));
    EXPECT_TRUE(store().get(chunk_id_of(disk), 4096));
    EXPECT_EQ(std::distance(std::filesystem::directory_iterator(root() + "/chunks"),
                            std::filesystem::directory_iterator()),
              5);
}

// What is younger than the bound stays, and so does what a push finds as it goes (a parent's chunk
// under a patch is put as any other), even between the listing and the removal; one a collection
// has set aside is written again.
TEST_F(StoreCollect, AnObjectThatAPushFindsIsNewAgainAndStays) {
    const auto a = chunk_of(1), b = chunk_of(2), c = chunk_of(3), d = chunk_of(4);
    put(a);
    put(b);
    put(c);
    put(d);
    age_all();
    const ChunkId fresh = put(chunk_of(9));

    auto plan = collect(true);
    ASSERT_TRUE(plan) << plan.error().message;
    EXPECT_EQ(plan->removed, 4u);
    EXPECT_EQ(plan->young, 1u);
    EXPECT_TRUE(holds(chunk_id_of(a)) && holds(chunk_id_of(b)) && holds(chunk_id_of(c)))
        << "a dry run removes nothing";

    auto found = store().put(chunk_id_of(a), a, a.size());
    ASSERT_TRUE(found) << found.error().message;
    EXPECT_FALSE(*found) << "held already: not written again";
    // Set aside by a collection as a push looks: not there, so written again.
    const std::string b_name = chunk_id_of(b).hex();
    ASSERT_EQ(::rename(path_of(b_name).c_str(), path_of(".gc-" + b_name).c_str()), 0);
    auto rewritten = store().put(chunk_id_of(b), b, b.size());
    ASSERT_TRUE(rewritten) << rewritten.error().message;
    EXPECT_TRUE(*rewritten);
    // The collection puts its copy back: the push's stays, the aside one goes.
    ASSERT_TRUE(store().put_back({chunk_id_of(b), 4096, {}, true}));
    EXPECT_TRUE(holds(b_name));
    EXPECT_FALSE(holds(".gc-" + b_name));

    // Listed old, then found by a push before its removal: put back, not removed.
    struct stat st{};
    ASSERT_EQ(::stat(path_of(chunk_id_of(d).hex()).c_str(), &st), 0);
    const StoredObject listed{chunk_id_of(d), 4096,
                              std::chrono::system_clock::from_time_t(st.st_mtime), false};
    ASSERT_TRUE(store().put(chunk_id_of(d), d, d.size()));
    auto raced = store().remove_unless_newer(listed, std::chrono::system_clock::now() - 1h);
    ASSERT_TRUE(raced) << raced.error().message;
    EXPECT_FALSE(*raced);
    EXPECT_TRUE(holds(chunk_id_of(d)));
    EXPECT_FALSE(holds(".gc-" + chunk_id_of(d).hex()));

    auto done = collect();
    ASSERT_TRUE(done) << done.error().message;
    EXPECT_EQ(done->removed, 1u);
    EXPECT_EQ(done->young, 4u);
    EXPECT_TRUE(holds(chunk_id_of(a)));
    EXPECT_TRUE(holds(chunk_id_of(b)));
    EXPECT_FALSE(holds(chunk_id_of(c)));
    EXPECT_TRUE(holds(chunk_id_of(d)));
    EXPECT_TRUE(holds(fresh));
}

// A manifest it cannot read names what it names all the same: nothing goes. So with a snapshots/
// that is a link, or none.
TEST_F(StoreCollect, AManifestItCannotParseStopsItBeforeItRemovesAnything) {
    const ChunkId orphan = put(chunk_of(1));
    age_all();
    std::ofstream(root() + "/snapshots/broken.json") << "{\"format\": \"ember-store-manifest\"";
    auto refused = collect();
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message.find("snapshot broken: nothing removed"), std::string::npos)
        << refused.error().message;
    EXPECT_TRUE(holds(orphan));

    // A folder that is a link may be another store's too.
    std::filesystem::rename(root() + "/snapshots", dir_.path() + "/shared-snapshots");
    std::filesystem::create_directory_symlink(dir_.path() + "/shared-snapshots",
                                              root() + "/snapshots");
    std::filesystem::remove(root() + "/snapshots/broken.json");
    auto linked = collect();
    ASSERT_FALSE(linked);
    EXPECT_NE(linked.error().message.find("snapshots/ is a link"), std::string::npos)
        << linked.error().message;
    EXPECT_TRUE(holds(orphan));

    std::filesystem::remove(root() + "/snapshots");
    auto no_folder = collect();
    ASSERT_FALSE(no_folder);
    EXPECT_NE(no_folder.error().message.find("nothing removed"), std::string::npos)
        << no_folder.error().message;
    EXPECT_TRUE(holds(orphan));
}

// What a manifest names is kept however it names it: through a link into snapshots/ (as a restore
// reads it), or in a field this ember does not parse (as a later push may add).
TEST_F(StoreCollect, AManifestThroughALinkOrInAFieldItDoesNotKnowStillNamesItsObjects) {
    const auto linked = chunk_of(1), future = chunk_of(2), state = chunk_of(3, 100);
    const Manifest m = manifest_of(state, {linked});
    std::filesystem::create_directories(dir_.path() + "/elsewhere");
    std::ofstream(dir_.path() + "/elsewhere/fn.json") << encode_manifest(m);
    std::filesystem::create_symlink(dir_.path() + "/elsewhere/fn.json",
                                    root() + "/snapshots/fn.json");
    std::filesystem::create_symlink(dir_.path() + "/nowhere.json", root() + "/snapshots/gone.json");
    std::string text = encode_manifest(m);
    text.resize(text.rfind('}'));
    text += ", \"cold_start\": {\"hints\": [\"" + put(future).hex() + "\"]}}";
    ASSERT_TRUE(parse_manifest(text)) << "a field it does not know is passed over";
    ASSERT_TRUE(store().put_manifest("later", text));
    const ChunkId orphan = put(chunk_of(4));
    age_all();

    auto done = collect();
    ASSERT_TRUE(done) << done.error().message;
    EXPECT_EQ(done->manifests, 2u);
    EXPECT_EQ(done->removed, 1u);
    EXPECT_TRUE(holds(chunk_id_of(linked)));
    EXPECT_TRUE(holds(chunk_id_of(future)));
    EXPECT_FALSE(holds(orphan));

    std::filesystem::create_directory(root() + "/snapshots/odd.json");
    auto refused = collect();
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message.find("odd.json: not a file"), std::string::npos)
        << refused.error().message;
}

// A collection that stopped between setting an object aside and removing it: the next puts back
// what a manifest names and removes the rest; a push's unfinished writes go once they are old.
TEST_F(StoreCollect, WhatAnUnfinishedCollectionSetAsideIsPutBackWhereNamed) {
    const auto m0 = chunk_of(1), state = chunk_of(2, 100);
    const Manifest m = manifest_of(state, {m0});
    ASSERT_TRUE(store().put_manifest("fn", encode_manifest(m)));
    const ChunkId orphan = put(chunk_of(3));
    const std::string named = chunk_id_of(m0).hex();
    ASSERT_EQ(::rename(path_of(named).c_str(), path_of(".gc-" + named).c_str()), 0);
    ASSERT_EQ(::rename(path_of(orphan.hex()).c_str(), path_of(".gc-" + orphan.hex()).c_str()), 0);
    std::ofstream(path_of(".abc.tmp-1")) << "half a chunk";
    age_all();
    std::ofstream(path_of(".def.tmp-2")) << "a push writing now";
    std::ofstream(path_of("README")) << "not the store's";
    EXPECT_TRUE(store().get(chunk_id_of(m0), 4096)) << "a restore finds it aside meanwhile";

    auto done = collect();
    ASSERT_TRUE(done) << done.error().message;
    EXPECT_EQ(done->named, 2u);
    EXPECT_EQ(done->removed, 1u);
    EXPECT_EQ(done->leftovers, 1u);
    EXPECT_TRUE(holds(named));
    EXPECT_FALSE(holds(".gc-" + named));
    EXPECT_FALSE(holds(".gc-" + orphan.hex()));
    EXPECT_FALSE(holds(".abc.tmp-1"));
    EXPECT_TRUE(holds(".def.tmp-2"));
    EXPECT_TRUE(holds("README"));
    EXPECT_TRUE(store().get(chunk_id_of(m0), 4096));
}

// A restore holds a lease on the manifest it read: with the snapshot's manifest removed, its
// objects stay for as long as the restore runs, and go with the next collection after it ends.
TEST_F(StoreCollect, AManifestARestoreHoldsALeaseOnKeepsItsObjectsUntilTheRestoreEnds) {
    const auto m0 = chunk_of(1), state = chunk_of(2, 100);
    const Manifest m = manifest_of(state, {m0});
    const std::string text = encode_manifest(m);
    ASSERT_TRUE(store().put_manifest("fn", text));
    age_all();
    auto leased = store().leased_manifest("fn");
    ASSERT_TRUE(leased) << leased.error().message;
    EXPECT_EQ(leased->text, text);
    ASSERT_TRUE(leased->lease) << leased->unleased;
    // A second clone of the same snapshot shares the lease.
    auto second = store().leased_manifest("fn");
    ASSERT_TRUE(second && second->lease);
    const std::string lease = root() + "/leases/" + manifest_digest(text).hex() + ".json";
    EXPECT_EQ(testing::read_file(lease), text);
    ASSERT_EQ(::unlink((root() + "/snapshots/fn.json").c_str()), 0);

    auto running = collect();
    ASSERT_TRUE(running) << running.error().message;
    EXPECT_EQ(running->manifests, 0u);
    EXPECT_EQ(running->leases, 1u);
    EXPECT_EQ(running->named, 2u);
    EXPECT_EQ(running->removed, 0u);
    EXPECT_TRUE(holds(chunk_id_of(m0)));

    leased->lease.reset();
    auto one_left = collect();
    ASSERT_TRUE(one_left) << one_left.error().message;
    EXPECT_EQ(one_left->leases, 1u) << "the second clone still runs";
    EXPECT_EQ(one_left->removed, 0u);

    second->lease.reset();
    auto dry = collect(true);
    ASSERT_TRUE(dry) << dry.error().message;
    EXPECT_EQ(dry->stale_leases, 1u);
    EXPECT_EQ(dry->removed, 2u);
    EXPECT_EQ(::access(lease.c_str(), F_OK), 0) << "a dry run removes nothing";
    auto ended = collect();
    ASSERT_TRUE(ended) << ended.error().message;
    EXPECT_EQ(ended->leases, 0u);
    EXPECT_EQ(ended->stale_leases, 1u);
    EXPECT_EQ(ended->removed, 2u);
    EXPECT_FALSE(holds(chunk_id_of(m0)));
    EXPECT_NE(::access(lease.c_str(), F_OK), 0);
}

// A lease no process holds is the leftover of a restore that ended; one whose bytes are not its
// name's text (a host's crash) is taken by no restore, and goes with the next collection; a lease's
// temporary file goes once it is old. A store that cannot take a lease still restores, saying why.
TEST_F(StoreCollect, ALeaseWithNoHolderOrTheWrongTextGoesAndAStoreWithoutLeasesStillReads) {
    const auto m0 = chunk_of(1), state = chunk_of(2, 100);
    const std::string text = encode_manifest(manifest_of(state, {m0}));
    ASSERT_TRUE(store().put_manifest("fn", text));
    ASSERT_EQ(::mkdir((root() + "/leases").c_str(), 0755), 0);
    const std::string lease = root() + "/leases/" + manifest_digest(text).hex() + ".json";
    std::ofstream(lease) << text.substr(0, text.size() / 2);
    std::ofstream(root() + "/leases/.x.json.tmp-1") << "half a lease";
    age(root() + "/leases/.x.json.tmp-1");
    std::ofstream(root() + "/leases/.y.json.tmp-2") << "a lease being made";

    auto refused = store().leased_manifest("fn");
    ASSERT_TRUE(refused) << refused.error().message;
    EXPECT_EQ(refused->text, text) << "the restore reads its manifest all the same";
    EXPECT_FALSE(refused->lease);
    EXPECT_NE(refused->unleased.find("another text"), std::string::npos) << refused->unleased;

    auto collected = collect();
    ASSERT_TRUE(collected) << collected.error().message;
    EXPECT_EQ(collected->stale_leases, 1u);
    EXPECT_EQ(collected->leftovers, 1u);
    EXPECT_NE(::access((root() + "/leases/.x.json.tmp-1").c_str(), F_OK), 0);
    EXPECT_EQ(::access((root() + "/leases/.y.json.tmp-2").c_str(), F_OK), 0);
    auto taken = store().leased_manifest("fn");
    ASSERT_TRUE(taken && taken->lease) << (taken ? taken->unleased : taken.error().message);
    EXPECT_EQ(testing::read_file(lease), text);
    taken->lease.reset();

    std::filesystem::remove_all(root() + "/leases");
    std::ofstream(root() + "/leases") << "not a folder";
    auto unleased = store().leased_manifest("fn");
    ASSERT_TRUE(unleased) << unleased.error().message;
    EXPECT_EQ(unleased->text, text);
    EXPECT_FALSE(unleased->lease);
    EXPECT_FALSE(unleased->unleased.empty());
}

}  // namespace
}  // namespace ember::snapshot
