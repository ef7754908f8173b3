// ember-uffd --socket PATH --mem-file FILE [--working-set WS --snapshot-path STATE]
//            [--timeout SECONDS]
// ember-uffd --socket PATH --manifest URL --write-state STATE [--write-working-set WS]
//            [--drive-root DIR [--writable-drive ID]...] [--manifest-sha256 HEX]
//            [--cache DIR [--cache-bytes N]] [--fetcher PATH] [--timeout SECONDS]
// A page-fault handler for the Uffd memory backend, of ember and of Firecracker alike: listens on
// PATH, takes one VMM's handshake (within --timeout, default 30 s), installs the working set WS
// whole if given (checked against the snapshot it was recorded from), then serves every other
// page from the memory file as the guest faults on it. Exits 0 once the VMM is gone, with what it
// served on stderr; 1 on any error, which the VMM sees as its handler's exit.
// With --manifest, the snapshot comes from a store (snapshot/store/manifest.h): its state file is
// fetched to STATE before PATH exists, for the agent's load; the working set the manifest names is
// fetched ahead and installed first (and its index written to WS, where asked, also before PATH
// exists: a load that names it has ember pre-fault those pages into KVM once they are in); every
// other fault brings in the chunk that holds it. Every chunk is checked against its SHA-256 before
// the guest sees it. The store chooses no host file: the state written has each of its drives at
// DIR/<drive id> of --drive-root, one with drives is refused without it, and one with a writable
// drive unless --writable-drive names it (snapshot/store/store_state.h). --manifest-sha256 pins
// the manifest by the SHA-256 push printed: another is refused before anything else is read.
// --cache keeps chunks in DIR, a host-wide cache that every handler on the host shares
// (snapshot/store/chunk_cache.h), of at most N bytes (default 4 GiB). From an http:// or https://
// store, objects come through ember-store-fetch (--fetcher; by default the one beside this
// program), a process of its own.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "core/base/atomic_file.h"
#include "core/base/file_io.h"
#include "core/base/mapping.h"
#include "core/base/open_file.h"
#include "core/seccomp/install.h"
#include "snapshot/decoded_snapshot.h"
#include "snapshot/format.h"
#include "snapshot/store/chunked_memory.h"
#include "snapshot/store/fetcher_store.h"
#include "snapshot/store/opened_store.h"
#include "snapshot/store/store_state.h"
#include "snapshot/uffd/handler_filter.h"
#include "snapshot/uffd/handshake.h"
#include "snapshot/uffd/page_server.h"
#include "snapshot/working_set.h"
#include "vmm/tools/options.h"

namespace {

using namespace ember;

struct Options {
    std::string socket, mem_file, working_set, snapshot, manifest, manifest_sha256, write_state,
        write_working_set, drive_root, cache, fetcher;
    std::vector<std::string> writable_drives;
    uint64_t cache_bytes = uint64_t{4} << 30;
    uint64_t timeout_s = 30;
};

int usage() {
    std::fprintf(stderr,
                 "usage: ember-uffd --socket PATH --mem-file FILE [--working-set WS "
                 "--snapshot-path STATE] [--timeout SECONDS]\n"
                 "       ember-uffd --socket PATH --manifest URL --write-state STATE "
                 "[--write-working-set WS] [--drive-root DIR [--writable-drive ID]...] "
                 "[--manifest-sha256 HEX] "
                 "[--cache DIR [--cache-bytes N]] [--fetcher PATH] [--timeout SECONDS]\n");
    return 2;
}

// Bound under a temporary name and renamed into place once listening: a VMM that finds the
// path can connect.
Result<UniqueFd> listen_on(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string temporary = path + ".binding-" + std::to_string(::getpid());
    if (temporary.size() >= sizeof addr.sun_path) return fail("--socket: path too long");
    std::memcpy(addr.sun_path, temporary.c_str(), temporary.size() + 1);
    UniqueFd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!sock.valid()) return fail_errno("socket");
    ::unlink(temporary.c_str());
    if (::bind(sock.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
        return fail_errno("--socket " + path + ": bind");
    if (::listen(sock.get(), 1) != 0 || ::rename(temporary.c_str(), path.c_str()) != 0) {
        const int err = errno;
        ::unlink(temporary.c_str());
        return fail_errno("--socket " + path, err);
    }
    return sock;
}

void report(pid_t vmm, const snapshot::PageServerCounts& c) {
    std::fprintf(
        stderr,
        "ember-uffd: the VMM (pid %d) is gone; %llu working-set pages installed (in "
        "%llu us), %llu pages served on faults, %llu as zeros after %llu removals\n",
        static_cast<int>(vmm), static_cast<unsigned long long>(c.prefetched),
        static_cast<unsigned long long>(c.install_us), static_cast<unsigned long long>(c.faults),
        static_cast<unsigned long long>(c.zero_faults), static_cast<unsigned long long>(c.removes));
}

// One VMM's handshake, after which every thread of this handler keeps to its seccomp filter: it
// serves pages, writes the cache and talks to a fetcher already started, and never again starts a
// program, opens a socket or maps a file it did not have.
Result<snapshot::UffdHandshake> handshake_on(const Options& o) {
    // Compiled before the handshake, where it costs the restore nothing.
    auto filter = snapshot::handler_filter();
    EMBER_TRY(filter, "seccomp");
    auto listener = listen_on(o.socket);
    EMBER_TRY(listener);
    auto handshake =
        snapshot::receive_uffd_handshake(listener->get(), std::chrono::seconds(o.timeout_s));
    ::unlink(o.socket.c_str());  // one VMM per handler
    EMBER_TRY(handshake);
    EMBER_TRY(seccomp::install_on_every_thread(*filter, "handler"));
    return handshake;
}

// The state file, fetched whole, made this host's (its drives under --drive-root) and written to
// `path` before the socket exists, so that an agent that waits for the socket finds it.
Result<snapshot::SnapshotIdentity> write_state(const snapshot::Manifest& m,
                                               snapshot::ChunkStore& store, const Options& o) {
    auto fetched = snapshot::fetch_file(m, m.state, store);
    EMBER_TRY(fetched, "the state file");
    auto state =
        snapshot::state_for_host(std::move(*fetched), m, {o.drive_root, o.writable_drives});
    EMBER_TRY(state);
    const std::string& path = o.write_state;
    auto file = AtomicFile::create(path);
    EMBER_TRY(file, "--write-state " + path);
    EMBER_TRY(write_all(file->fd(), state->bytes), "--write-state " + path);
    EMBER_TRY(file->commit(), "--write-state " + path);
    return state->identity;
}

// The manifest's working set, as a working set file of the state file just written.
Result<void> write_working_set(const snapshot::Manifest& m,
                               const snapshot::SnapshotIdentity& identity,
                               const std::string& path) {
    auto file = AtomicFile::create(path);
    EMBER_TRY(file, "--write-working-set " + path);
    EMBER_TRY(snapshot::write_working_set(file->fd(), identity, m.working_set),
              "--write-working-set " + path);
    EMBER_TRY(file->commit(), "--write-working-set " + path);
    return {};
}

Result<int> run_from_store(const Options& o) {
    auto opened = snapshot::OpenedStore::open(
        {o.manifest, o.fetcher, o.cache, o.cache_bytes, o.manifest_sha256});
    EMBER_TRY(opened);
    if (!(*opened)->unleased().empty())
        std::fprintf(stderr,
                     "ember-uffd: no lease on the manifest (%s): a collection of the store may "
                     "remove chunks this VM has yet to read\n",
                     (*opened)->unleased().c_str());
    const snapshot::Manifest& m = (*opened)->manifest();
    snapshot::ChunkCache* cache = (*opened)->cache();
    snapshot::ChunkStore& chunks_from = (*opened)->chunks();
    auto identity = write_state(m, chunks_from, o);
    EMBER_TRY(identity, "--manifest " + o.manifest);
    if (!o.write_working_set.empty()) {
        ::unlink(o.write_working_set.c_str());  // none where the manifest has none
        if (!m.working_set.empty()) EMBER_TRY(write_working_set(m, *identity, o.write_working_set));
    }

    auto handshake = handshake_on(o);
    EMBER_TRY(handshake);
    const pid_t vmm = handshake->peer.pid;
    const UniqueFd pidfd = std::move(handshake->peer.pidfd);
    auto source = std::make_unique<snapshot::ChunkedMemory>(
        m, chunks_from, (*opened)->remote() ? snapshot::FetcherStore::kFetches : 8);
    const snapshot::ChunkedMemory& chunks = *source;
    auto server = snapshot::PageServer::create(std::move(*handshake), std::move(source));
    EMBER_TRY(server);
    if (!m.working_set.empty()) {
        // The cache is written once the VM runs, not while the working set goes in.
        if (cache) cache->hold_writes(true);
        auto installed = server->install_runs(m.working_set);
        if (cache) cache->hold_writes(false);
        EMBER_TRY(installed);
    }
    EMBER_TRY(server->serve(pidfd.get()));
    report(vmm, server->counts());
    const auto& c = chunks.counts();
    std::fprintf(
        stderr,
        "ember-uffd: from the store: %llu chunks fetched (%llu bytes), %llu of them "
        "ahead for the working set, %llu of those from %llu reads of its packs (%llu "
        "bytes); %llu pages installed\n",
        static_cast<unsigned long long>(c.fetched),
        static_cast<unsigned long long>(c.fetched_bytes), static_cast<unsigned long long>(c.ahead),
        static_cast<unsigned long long>(c.packed), static_cast<unsigned long long>(c.pack_reads),
        static_cast<unsigned long long>(c.pack_bytes),
        static_cast<unsigned long long>(server->counts().installed));
    if (cache) {
        // Its counts once what it holds back is written: what went past the bound went then.
        cache->flush();
        std::fprintf(stderr, "ember-uffd: the cache: %s\n", describe(cache->counts()).c_str());
    }
    return 0;
}

Result<int> run(const Options& o) {
    if (!o.manifest.empty()) return run_from_store(o);
    auto mem_fd = open_file(o.mem_file, O_RDONLY);
    EMBER_TRY(mem_fd, "--mem-file " + o.mem_file);
    auto mem_size = file_size(mem_fd->get());
    EMBER_TRY(mem_size, "--mem-file " + o.mem_file);
    if (*mem_size == 0) return fail("--mem-file " + o.mem_file + ": empty");
    auto memory = Mapping::map(*mem_size, PROT_READ, MAP_PRIVATE, mem_fd->get());
    EMBER_TRY(memory, "--mem-file " + o.mem_file);

    std::optional<snapshot::WorkingSet> set;
    if (!o.working_set.empty()) {
        auto state = snapshot::read_state_file(o.snapshot);
        EMBER_TRY(state, "--snapshot-path " + o.snapshot);
        auto ws = open_file(o.working_set, O_RDONLY);
        EMBER_TRY(ws, "--working-set " + o.working_set);
        auto read =
            snapshot::read_working_set(ws->get(), {snapshot::closing_checksum(*state), *mem_size});
        EMBER_TRY(read, "--working-set " + o.working_set);
        set = std::move(*read);
    }

    auto handshake = handshake_on(o);
    EMBER_TRY(handshake);
    const pid_t vmm = handshake->peer.pid;
    const UniqueFd pidfd = std::move(handshake->peer.pidfd);
    auto server = snapshot::PageServer::create(
        std::move(*handshake), std::make_unique<snapshot::MappedMemory>(std::span<const uint8_t>(
                                   memory->data(), static_cast<size_t>(*mem_size))));
    EMBER_TRY(server);
    if (set) EMBER_TRY(server->install_runs(set->runs));
    EMBER_TRY(server->serve(pidfd.get()));
    report(vmm, server->counts());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    // A fetcher (ember-store-fetch) that dies leaves a pipe with no reader: its write's EPIPE is
    // the error that says so, where SIGPIPE would end this handler, and its VM, without a word.
    ::signal(SIGPIPE, SIG_IGN);
    Options o;
    auto parsed = tools::parse_options(
        argc, argv, 1,
        {{"--socket", &o.socket},
         {"--mem-file", &o.mem_file},
         {"--working-set", &o.working_set},
         {"--snapshot-path", &o.snapshot},
         {"--manifest", &o.manifest},
         {"--write-state", &o.write_state},
         {"--write-working-set", &o.write_working_set},
         {"--drive-root", &o.drive_root},
         {"--writable-drive", [&](const std::string& id) { o.writable_drives.push_back(id); }},
         {"--manifest-sha256", &o.manifest_sha256},
         {"--cache", &o.cache},
         {"--fetcher", &o.fetcher},
         {"--cache-bytes", tools::WholeNumber{.out = &o.cache_bytes, .what = "a number of bytes"}},
         // Whole seconds from 1 to a day: atoi made 4294967297 one second, and junk zero.
         {"--timeout", tools::WholeNumber{.out = &o.timeout_s,
                                          .max = 86400,
                                          .what = "a whole number of seconds from 1 to 86400"}}});
    if (!parsed) {
        std::fprintf(stderr, "ember-uffd: %s\n", parsed.error().message.c_str());
        return 2;
    }
    if (!*parsed) return usage();
    const bool from_file = !o.mem_file.empty() && o.manifest.empty() && o.write_state.empty() &&
                           o.working_set.empty() == o.snapshot.empty();
    const bool from_store = o.mem_file.empty() && !o.manifest.empty() && !o.write_state.empty() &&
                            o.working_set.empty() && o.snapshot.empty();
    if ((!o.cache.empty() || !o.fetcher.empty() || !o.write_working_set.empty() ||
         !o.drive_root.empty() || !o.writable_drives.empty() || !o.manifest_sha256.empty()) &&
        !from_store)
        return usage();
    if (o.fetcher.empty()) o.fetcher = snapshot::FetcherStore::beside_this_program();
    if (o.socket.empty() || (!from_file && !from_store)) return usage();
    auto r = run(o);
    if (!r) {
        std::fprintf(stderr, "ember-uffd: %s\n", r.error().message.c_str());
        return 1;
    }
    return *r;
}
