// Read-only drives from a store (ember-snapshot push --drive, ember-store-mount): every byte of a
// mounted image is the image's, chunks of zeros never fetched, a corrupt chunk a read error for
// that read alone, two mounts through one cache fetching each chunk once from a web server, and a
// guest restored with its memory and its drive both from the store, nothing of either on the host
// beforehand. The mounts are made in each test's own mount namespace (tests/support/
// mount_namespace.h): a test killed by its failsafe leaves none behind.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>
#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "snapshot/decoded_snapshot.h"
#include "snapshot/store/chunk_cache.h"
#include "snapshot/store/directory_store.h"
#include "snapshot/store/manifest.h"
#include "tests/support/mount_namespace.h"
#include "tests/support/nginx_server.h"
#include "tests/support/uffd_snapshot.h"

namespace ember::testing {
namespace {

using snapshot::ChunkId;

// An image of `bytes` whose bytes differ from chunk to chunk, with [zeros_from, zeros_to) zeros.
std::string an_image(size_t bytes, size_t zeros_from, size_t zeros_to, uint32_t seed) {
    std::mt19937 random(seed);
    std::string image(bytes, '\0');
    for (size_t i = 0; i < bytes; ++i)
        if (i < zeros_from || i >= zeros_to) image[i] = static_cast<char>(random());
    return image;
}

// ember-store-mount serving a manifest's drives at `at`, its stderr in `dir`/mount.err, ended with
// SIGTERM (so that it unmounts) where the test has not ended it.
class StoreMount {
  public:
    StoreMount(const TempDir& dir, const std::string& at, const std::vector<std::string>& extra)
        : at_(at), process_(dir, argv(at, extra), "mount") {}
    ~StoreMount() { stop(); }
    StoreMount(const StoreMount&) = delete;
    StoreMount& operator=(const StoreMount&) = delete;

    // Waits until `name` is served (true) or the program has ended (false).
    bool serving(const std::string& name) {
        const std::string path = at_ + "/" + name;
        return wait_file(process_.err,
                         [&](const std::string&) {
                             return ::access(path.c_str(), F_OK) == 0 || ended();
                         }) &&
               ::access(path.c_str(), F_OK) == 0;
    }
    bool ended() const {
        siginfo_t info{};
        return process_.pid > 0 &&
               ::waitid(P_PID, static_cast<id_t>(process_.pid), &info,
                        WEXITED | WNOHANG | WNOWAIT) == 0 &&
               info.si_pid == process_.pid;
    }
    // SIGTERM (or another signal), then its exit status (-1: killed, already reaped, or still
    // running after the failsafe, when the Handler kills it).
    int stop(int signal = SIGTERM) {
        if (process_.pid <= 0) return -1;
        ::kill(process_.pid, signal);
        return process_.wait();
    }
    int wait() { return process_.wait(); }
    pid_t pid() const { return process_.pid; }
    std::string err() const { return read_file(process_.err); }
    // Whether `at` is still mounted (a dead FUSE mount too, which stat() cannot look at).
    bool mounted() const {
        std::istringstream mounts(read_file("/proc/self/mounts"));
        for (std::string line; std::getline(mounts, line);)
            if (line.find(" " + at_ + " ") != std::string::npos) return true;
        return false;
    }

  private:
    static std::vector<std::string> argv(const std::string& at,
                                         const std::vector<std::string>& extra) {
        ::mkdir(at.c_str(), 0755);
        std::vector<std::string> argv = {EMBER_STORE_MOUNT, "--at", at};
        argv.insert(argv.end(), extra.begin(), extra.end());
        return argv;
    }

    std::string at_;
    Handler process_;
};

// A folder store under files/store holding a manifest "fn" with two drives and nothing else a
// mount reads (a one-chunk state and a memory of zeros, which a manifest must have).
class StoreMountTest : public ::testing::Test {
  protected:
    static constexpr uint64_t kChunk = 64 << 10;
    void SetUp() override {
        ASSERT_EQ(in_own_mount_namespace(), "");
        auto store = snapshot::DirectoryStore::open(root(), true);
        ASSERT_TRUE(store) << store.error().message;
        snapshot::Manifest m;
        m.chunk_size = kChunk;
        const std::vector<uint8_t> state = {'s', 't', 'a', 't', 'e'};
        m.state = {state.size(), {put(*store, state)}};
        m.memory = {4096, {std::nullopt}};
        for (const auto& [id, image] : {std::pair{"rootfs", &rootfs}, std::pair{"small", &small}}) {
            snapshot::StoredDrive d{id, {image->size(), {}}};
            for (size_t at = 0; at < image->size(); at += kChunk) {
                const std::string piece = image->substr(at, kChunk);
                if (piece.find_first_not_of('\0') == std::string::npos) {
                    d.image.chunks.emplace_back();
                    continue;
                }
                d.image.chunks.emplace_back(
                    put(*store, std::vector<uint8_t>(piece.begin(), piece.end())));
                stored.push_back(d.image.chunks.back()->hex());
            }
            m.drives.push_back(std::move(d));
        }
        ASSERT_TRUE(store->put_manifest("fn", snapshot::encode_manifest(m)));
    }
    static ChunkId put(snapshot::DirectoryStore& store, const std::vector<uint8_t>& bytes) {
        const ChunkId id = snapshot::chunk_id_of(bytes);
        EXPECT_TRUE(store.put(id, bytes, bytes.size()));
        return id;
    }
    std::string root() const { return files.path() + "/store"; }
    std::string mount_err_path() const { return files.path() + "/mount.err"; }
    std::string url() const { return "file://" + root() + "/snapshots/fn.json"; }

    TempDir files;
    // 1 MiB and a bit, its second 256 KiB zeros; and one shorter than a chunk.
    std::string rootfs = an_image((1 << 20) + 1000, 256 << 10, 512 << 10, 1);
    std::string small = an_image(10000, 0, 0, 2);
    std::vector<std::string> stored;  // the chunks the drives have in the store, by name
};

TEST_F(StoreMountTest, ServesEachDriveAsAReadOnlyFileOfItsImagesBytes) {
    const std::string at = files.path() + "/mnt";
    StoreMount mount(files, at, {"--manifest", url(), "--cache", files.path() + "/cache"});
    ASSERT_TRUE(mount.serving("rootfs")) << mount.err();
    EXPECT_EQ(read_file(at + "/rootfs"), rootfs);
    EXPECT_EQ(read_file(at + "/small"), small);
    struct stat st{};
    ASSERT_EQ(::stat((at + "/rootfs").c_str(), &st), 0);
    EXPECT_EQ(static_cast<size_t>(st.st_size), rootfs.size());
    EXPECT_EQ(st.st_mode & 0777, 0444u);
    const int writable = ::open((at + "/rootfs").c_str(), O_RDWR | O_CLOEXEC);
    EXPECT_EQ(writable, -1);
    EXPECT_EQ(errno, EROFS);
    if (writable >= 0) ::close(writable);
    EXPECT_EQ(::access((at + "/other").c_str(), F_OK), -1);
    std::set<std::string> listed;
    for (const auto& entry : std::filesystem::directory_iterator(at))
        listed.insert(entry.path().filename());
    EXPECT_EQ(listed, (std::set<std::string>{"rootfs", "small"}));

    EXPECT_EQ(mount.stop(), 0) << mount.err();
    EXPECT_FALSE(mount.mounted()) << "SIGTERM left the folder mounted";
    const std::string err = mount.err();
    // Every stored chunk fetched into the cache once; the 4 zero chunks of rootfs never.
    EXPECT_NE(err.find(std::to_string(stored.size()) + " fetched into it"), std::string::npos)
        << err;
    EXPECT_NE(err.find("drive rootfs: "), std::string::npos) << err;
    EXPECT_EQ(err.find("failed: "), std::string::npos) << err;
}

TEST_F(StoreMountTest, AChunkCorruptInTheStoreFailsThatReadAloneAndSaysWhich) {
    corrupt_first_byte(root() + "/chunks/" + stored[1]);  // rootfs's second chunk
    const std::string at = files.path() + "/mnt";
    StoreMount mount(files, at, {"--manifest", url()});
    ASSERT_TRUE(mount.serving("rootfs")) << mount.err();
    const int fd = ::open((at + "/rootfs").c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    alignas(4096) static char buffer[kChunk];
    EXPECT_EQ(::pread(fd, buffer, sizeof buffer, 0), static_cast<ssize_t>(kChunk));
    EXPECT_EQ(std::string(buffer, kChunk), rootfs.substr(0, kChunk));
    EXPECT_EQ(::pread(fd, buffer, sizeof buffer, kChunk), -1);
    EXPECT_EQ(errno, EIO);
    EXPECT_EQ(::pread(fd, buffer, sizeof buffer, 3 * kChunk), static_cast<ssize_t>(kChunk))
        << "one bad chunk failed a read of another";
    ::close(fd);
    EXPECT_EQ(mount.stop(), 0);
    const std::string err = mount.err();
    EXPECT_NE(err.find("drive rootfs: a read failed: chunk 1: chunk " + stored[1] + " is corrupt"),
              std::string::npos)
        << err;
}

TEST_F(StoreMountTest, EveryThreadKeepsToTheHandlersSeccompFilterOnceItServes) {
    const std::string at = files.path() + "/mnt";
    StoreMount mount(files, at, {"--manifest", url(), "--cache", files.path() + "/cache"});
    ASSERT_TRUE(mount.serving("rootfs")) << mount.err();
    EXPECT_EQ(read_file(at + "/rootfs"), rootfs);
    int threads = 0;
    for (const auto& [task, status] : thread_statuses(mount.pid())) {
        EXPECT_NE(status.find("\nSeccomp:\t2\n"), std::string::npos) << task << status;
        ++threads;
    }
    EXPECT_GE(threads, 2) << "the serving threads and the cache's writer, at least";
    EXPECT_EQ(mount.stop(), 0) << "a refused system call ends it with 148\n" << mount.err();
}

// However the server ends, SIGKILL too, its folder is unmounted, and a reader that held a file
// open gets an error, never a wait.
TEST_F(StoreMountTest, AServerKilledLeavesNoMountAndItsReadersAnError) {
    const std::string at = files.path() + "/mnt";
    StoreMount mount(files, at, {"--manifest", url()});
    ASSERT_TRUE(mount.serving("rootfs")) << mount.err();
    const int fd = ::open((at + "/rootfs").c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    alignas(4096) static char buffer[4096];
    ASSERT_EQ(::pread(fd, buffer, sizeof buffer, 0), 4096);
    EXPECT_EQ(mount.stop(SIGKILL), -1);
    EXPECT_TRUE(wait_file(mount_err_path(), [&](const std::string&) { return !mount.mounted(); }))
        << "the folder is still mounted after its server died";
    EXPECT_EQ(::pread(fd, buffer, sizeof buffer, 8 * kChunk), -1);
    ::close(fd);
}

// SIGTERM while a read waits on a store that stopped answering (its server frozen): the mount
// ends then, not after its fetcher's tries, and the waiting reader's request is aborted with the
// connection (ECONNABORTED); a mount that waited for the tries would have answered EIO.
TEST_F(StoreMountTest, SigtermEndsAMountWhoseReadWaitsOnAStoreThatStoppedAnswering) {
    Nginx web(files, root());
    ASSERT_TRUE(web.ready()) << web.error_log();
    const std::string at = files.path() + "/mnt";
    StoreMount mount(files, at, {"--manifest", web.url() + "/snapshots/fn.json"});
    ASSERT_TRUE(mount.serving("rootfs")) << mount.err();
    web.freeze();
    const int fd = ::open((at + "/rootfs").c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    int read_errno = 0;
    std::thread reader([&] {
        alignas(4096) static char buffer[4096];
        if (::pread(fd, buffer, sizeof buffer, 0) < 0) read_errno = errno;
    });
    EXPECT_TRUE(wait_file(mount_err_path(), [&](const std::string&) { return web.has_unread(); }))
        << "the read's request never reached the frozen server";
    EXPECT_EQ(mount.stop(), 0) << mount.err();
    reader.join();
    ::close(fd);
    EXPECT_EQ(read_errno, ECONNABORTED) << std::strerror(read_errno);
    EXPECT_FALSE(mount.mounted());
}

TEST_F(StoreMountTest, AManifestWithoutDrivesIsRefusedAndNothingIsMounted) {
    auto store = snapshot::DirectoryStore::open(root(), false);
    ASSERT_TRUE(store);
    snapshot::Manifest m;
    m.chunk_size = kChunk;
    m.state = {5, {snapshot::chunk_id_of(std::vector<uint8_t>{'s', 't', 'a', 't', 'e'})}};
    m.memory = {4096, {std::nullopt}};
    ASSERT_TRUE(store->put_manifest("bare", snapshot::encode_manifest(m)));
    const std::string at = files.path() + "/mnt";
    StoreMount mount(files, at, {"--manifest", "file://" + root() + "/snapshots/bare.json"});
    EXPECT_EQ(mount.wait(), 1);
    EXPECT_NE(mount.err().find("no drive went into the store with this snapshot"),
              std::string::npos)
        << mount.err();
    EXPECT_FALSE(mount.mounted());
}

// Two mounts of one store over HTTP (two hosts' worth of readers on one host), one cache: each
// chunk comes from the server once, counted in its own log.
TEST_F(StoreMountTest, TwoMountsThroughOneCacheFetchEachChunkOnceFromTheServer) {
    Nginx web(files, root());
    ASSERT_TRUE(web.ready()) << web.error_log();
    const std::vector<std::string> args = {"--manifest", web.url() + "/snapshots/fn.json",
                                           "--cache", files.path() + "/cache"};
    for (const char* name : {"mnt1", "mnt2"}) {
        TempDir own;
        StoreMount mount(own, files.path() + "/" + name, args);
        ASSERT_TRUE(mount.serving("rootfs")) << mount.err();
        EXPECT_EQ(read_file(files.path() + "/" + name + "/rootfs"), rootfs);
        EXPECT_EQ(mount.stop(), 0) << mount.err();
    }
    for (const auto& c : stored) {
        if (c == stored.back()) continue;
        EXPECT_EQ(web.requests("GET /chunks/" + c), 1) << c;
    }
    EXPECT_EQ(web.requests("GET /chunks/" + stored.back()), 0) << "small was never read";
}

// The blk_reader guest reading a drive "data" (its second MiB zeros), snapshotted; then pushed into
// a store, and every file of it removed from the host. A clone restored through ember-uffd
// --manifest --drive-root, the folder where ember-store-mount serves the drive, reads on: every
// block it reads is the image's.
class StoreDrive : public UffdSnapshot {
  protected:
    void SetUp() override {}  // not UffdSnapshot's guest

    // Boots blk_reader on `drive_path` and snapshots it once it has read 5 blocks of `image`; how
    // many of those it read right.
    int snapshot_reading(const std::string& drive_path, const std::string& image, bool read_only) {
        ApiEmber a;
        auto c = a.api();
        EXPECT_EQ(
            call(c, "PUT", "/machine-config", R"({"vcpu_count": 1, "mem_size_mib": 32})").status,
            204);
        EXPECT_EQ(call(c, "PUT", "/boot-source",
                       R"({"kernel_image_path": ")" + guest("blk_reader") + "\"}")
                      .status,
                  204);
        EXPECT_EQ(call(c, "PUT", "/drives/data",
                       R"({"drive_id": "data", "path_on_host": ")" + drive_path +
                           R"(", "is_root_device": false, "is_read_only": )" +
                           (read_only ? "true}" : "false}"))
                      .status,
                  204);
        EXPECT_EQ(call(c, "PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
        const std::string console = a.dir.path() + "/console";
        if (!wait_file(console, [](const std::string& s) { return lines_in(s) >= 5; })) {
            ADD_FAILURE() << "blk_reader read nothing: " << a.log();
            return 0;
        }
        EXPECT_EQ(call(c, "PATCH", "/vm", R"({"state": "Paused"})").status, 204);
        const int read = blocks_read_right(read_file(console), image, 0);
        EXPECT_EQ(call(c, "PUT", "/snapshot/create",
                       R"({"snapshot_path": ")" + state + R"(", "mem_file_path": ")" + mem + "\"}")
                      .status,
                  204);
        return read;
    }

    static int lines_in(const std::string& s) {
        return static_cast<int>(std::count(s.begin(), s.end(), '\n'));
    }

    // The blocks blk_reader printed in `console` past its first `skip` lines, checked against
    // `image`: how many matched; a mismatch or a failed read fails the test.
    static int blocks_read_right(const std::string& console, const std::string& image, int skip) {
        std::istringstream lines(console);
        int matched = 0, n = 0;
        for (std::string line; std::getline(lines, line);) {
            if (n++ < skip || !lines.good()) continue;
            std::smatch m;
            if (!std::regex_match(line, m, std::regex("ro ([0-9]+) ([0-9]+)"))) {
                ADD_FAILURE() << "line " << n << ": " << line;
                continue;
            }
            const size_t block = std::stoul(m[1]);
            uint32_t hash = 2166136261u;
            for (size_t i = 0; i < 4096; ++i)
                hash = (hash ^ static_cast<uint8_t>(image[block * 4096 + i])) * 16777619u;
            EXPECT_EQ(std::stoul(m[2]), hash) << "block " << block;
            ++matched;
        }
        return matched;
    }
};

TEST_F(StoreDrive, AGuestRestoredFromTheStoreReadsItsDriveFromItWithNothingOnTheHost) {
    ASSERT_EQ(in_own_mount_namespace(), "");
    const std::string image = an_image(4 << 20, 1 << 20, 2 << 20, 3);
    const std::string image_path = files.write("image", image);
    EXPECT_GE(snapshot_reading(image_path, image, true), 5);
    auto pushed = run_process({EMBER_SNAPSHOT, "push", "--snapshot-path", state, "--mem-file-path",
                               mem, "--drive", "data", "--chunk-size", "65536", manifest_url("fn")},
                              kFailsafe);
    ASSERT_EQ(pushed.exit_code, 0) << pushed.err;
    for (const auto& gone : {image_path, mem, state}) ASSERT_EQ(::unlink(gone.c_str()), 0);

    const std::string cache = files.path() + "/cache", at = files.path() + "/drives";
    StoreMount mount(files, at, {"--manifest", manifest_url("fn"), "--cache", cache});
    ASSERT_TRUE(mount.serving("data")) << mount.err();
    const std::string fetched = files.path() + "/fetched.state";
    Handler h(files, {EMBER_UFFD, "--socket", sock, "--manifest", manifest_url("fn"),
                      "--write-state", fetched, "--drive-root", at, "--cache", cache});
    ASSERT_TRUE(wait_exists(sock)) << read_file(h.err);
    {
        ApiEmber clone;
        auto c = clone.api();
        auto loaded = call(c, "PUT", "/snapshot/load", uffd_load(true, fetched));
        ASSERT_EQ(loaded.status, 204) << loaded.body << clone.log();
        const std::string console = clone.dir.path() + "/console";
        ASSERT_TRUE(wait_file(console, [](const std::string& s) { return lines_in(s) >= 60; }))
            << clone.log();
        // The clone's console holds only what it printed after the restore: a line cut at the
        // snapshot ends in its first line, which is skipped.
        EXPECT_GE(blocks_read_right(read_file(console), image, 1), 50);
    }
    EXPECT_EQ(h.wait(), 0) << read_file(h.err);
    EXPECT_EQ(mount.stop(), 0) << mount.err();
    const std::string err = mount.err();
    std::smatch m;
    ASSERT_TRUE(std::regex_search(err, m,
                                  std::regex("drive data: ([0-9]+) reads answered, 0 "
                                             "failed; ([0-9]+) chunks")))
        << err;
    EXPECT_GT(std::stoul(m[2]), 0u) << err;
}

// The store chooses no host file: a snapshot whose writable drive was a file of the host it was
// taken on (here `victim`, as a hostile store would name one) is refused by ember-uffd and by a
// view without a drive root, and without the host's word that the drive may be written, before
// the handler listens and before anything is opened; with both, the state written has the drive
// at ROOT/<drive id>, and a load from it opens that file (here missing) and never the victim. A
// view of each root, and of each set of writable drives, is a view of its own, counted against the
// cache's bound. A manifest other than the pinned one is refused before its state file is fetched.
TEST_F(StoreDrive, AStoresStateFileChoosesNoHostFileForADrive) {
    // 4 MiB, as blk_reader reads: its eighth read is block 259, past a 1 MiB image's end, which
    // failed the test wherever the pause came after it.
    const std::string image = an_image(4 << 20, 0, 0, 4);
    const std::string victim = files.write("victim", image);
    EXPECT_GE(snapshot_reading(victim, image, false), 5);
    auto pushed = run_process({EMBER_SNAPSHOT, "push", "--snapshot-path", state, "--mem-file-path",
                               mem, manifest_url("fn")},
                              kFailsafe);
    ASSERT_EQ(pushed.exit_code, 0) << pushed.err;
    const std::string said = pushed.out + pushed.err;
    std::smatch digest;
    ASSERT_TRUE(std::regex_search(said, digest, std::regex("SHA-256 ([0-9a-f]{64})"))) << said;
    struct stat before{};
    ASSERT_EQ(::stat(victim.c_str(), &before), 0);

    const std::string fetched = files.path() + "/fetched.state";
    const std::string root = files.path() + "/drives";
    auto refused = [&](const std::vector<std::string>& extra, const std::string& why) {
        std::vector<std::string> argv = {EMBER_UFFD,         "--socket",      sock,   "--manifest",
                                         manifest_url("fn"), "--write-state", fetched};
        argv.insert(argv.end(), extra.begin(), extra.end());
        Handler h(files, argv);
        EXPECT_EQ(h.wait(), 1) << read_file(h.err);
        EXPECT_NE(read_file(h.err).find(why), std::string::npos) << read_file(h.err);
        EXPECT_NE(::access(sock.c_str(), F_OK), 0) << "it listened";
        EXPECT_NE(::access(fetched.c_str(), F_OK), 0) << "it wrote the state file";
    };
    refused({}, "--drive-root DIR");
    refused({"--drive-root", root},
            "writable: a restore from a store writes a drive only where "
            "the host says it may (--writable-drive data)");
    refused({"--drive-root", "/", "--writable-drive", "data"}, "--drive-root /: not an absolute");
    refused({"--manifest-sha256", std::string(64, '0'), "--drive-root", root, "--writable-drive",
             "data"},
            "not the pinned");
    {
        Handler h(files, {EMBER_UFFD, "--socket", sock, "--manifest", manifest_url("fn"),
                          "--manifest-sha256", digest[1], "--write-state", fetched, "--drive-root",
                          root + "/", "--writable-drive", "data"});
        ASSERT_TRUE(wait_exists(sock)) << read_file(h.err);
        auto written = snapshot::read_snapshot(fetched);
        ASSERT_TRUE(written) << written.error().message;
        ASSERT_EQ(written->config->drives.size(), 1u);
        EXPECT_EQ(written->config->drives[0].path_on_host, root + "/data");
        EXPECT_FALSE(written->config->drives[0].is_read_only);
        // ROOT/data is not there: the load fails on it, and nothing else is opened.
        ApiEmber clone;
        auto c = clone.api();
        auto loaded = call(c, "PUT", "/snapshot/load", uffd_load(true, fetched));
        EXPECT_EQ(loaded.status, 400) << loaded.body;
        EXPECT_NE(loaded.body.find(root + "/data"), std::string::npos) << loaded.body;
    }

    const std::string cache = files.path() + "/cache";
    auto view = [&](const std::vector<std::string>& extra) {
        std::vector<std::string> argv = {EMBER_SNAPSHOT, "view", "--cache", cache};
        argv.insert(argv.end(), extra.begin(), extra.end());
        argv.push_back(manifest_url("fn"));
        return run_process(argv, kFailsafe);
    };
    for (const auto& extra :
         {std::vector<std::string>{}, std::vector<std::string>{"--drive-root", root}}) {
        auto no = view(extra);
        EXPECT_EQ(no.exit_code, 1);
        EXPECT_NE(no.err.find(extra.empty() ? "--drive-root" : "--writable-drive"),
                  std::string::npos)
            << no.err;
        EXPECT_TRUE(no.out.empty()) << no.out;
    }
    std::set<std::string> views;
    for (const std::string& at : {root, files.path() + "/other"}) {
        auto made = view({"--drive-root", at, "--writable-drive", "data"});
        ASSERT_EQ(made.exit_code, 0) << made.err;
        std::smatch path;
        ASSERT_TRUE(
            std::regex_search(made.out, path, std::regex(R"re("snapshot_path": "([^"]+)")re")))
            << made.out;
        EXPECT_NE(path[1].str().find("/views/" + digest[1].str() + "-"), std::string::npos)
            << path[1];
        views.insert(std::filesystem::path(path[1].str()).parent_path());
        auto viewed = snapshot::read_snapshot(path[1]);
        ASSERT_TRUE(viewed) << viewed.error().message;
        EXPECT_EQ(viewed->config->drives.at(0).path_on_host, at + "/data");
    }
    EXPECT_EQ(views.size(), 2u) << "two roots shared one view";
    // Both are counted against the bound: a cache of a byte lets both go.
    auto none = snapshot::DirectoryStore::open(files.path() + "/none", true);
    ASSERT_TRUE(none) << none.error().message;
    auto small = snapshot::ChunkCache::open(cache, 1, *none);
    ASSERT_TRUE(small) << small.error().message;
    (*small)->added_beside(1);
    for (const auto& v : views) EXPECT_FALSE(std::filesystem::exists(v)) << v << " was not let go";

    struct stat after{};
    ASSERT_EQ(::stat(victim.c_str(), &after), 0);
    EXPECT_EQ(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
    EXPECT_EQ(read_file(victim), image);
}

}  // namespace
}  // namespace ember::testing
