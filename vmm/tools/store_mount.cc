// ember-store-mount --manifest URL [--manifest-sha256 HEX] --at DIR [--cache DIR [--cache-bytes N]]
//                   [--fetcher PATH] [--threads N]
// Serves the read-only drive images that went into a store with a snapshot (ember-snapshot push
// --drive) as files: DIR/<drive id> for each, read-only, mounted over FUSE until SIGTERM or SIGINT
// (or DIR is unmounted), then unmounted. A read brings in the chunks it spans through the host's
// cache (--cache, the folder ember-uffd shares; snapshot/store/chunk_cache.h), each checked against
// its SHA-256 before any reader sees it; a chunk that cannot be had, after the fetcher's bounded
// tries, is a read error (EIO) for that read alone, and its reason is printed. Restore with its
// drives at DIR/<id> (ember-uffd's --drive-root DIR, or a bind mount of DIR into a jail), and the
// restore needs neither the memory file nor the image on the host beforehand: with ember-uffd
// --manifest, the whole function comes from the store. The files are there (stat finds them) once
// it serves. Needs CAP_SYS_ADMIN to mount; once mounted, every thread keeps to ember-uffd's seccomp
// filter, and a process of its own unmounts the folder however this one ends.
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <cstdio>
#include <string>

#include "core/base/at_once.h"
#include "core/base/unique_fd.h"
#include "core/seccomp/install.h"
#include "snapshot/store/chunked_image.h"
#include "snapshot/store/fetcher_store.h"
#include "snapshot/store/opened_store.h"
#include "snapshot/store/read_only_mount.h"
#include "snapshot/uffd/handler_filter.h"
#include "vmm/tools/options.h"

namespace {

using namespace ember;

// The reasons printed for reads that failed; past it, only their count at the end.
constexpr uint64_t kMostReported = 16;

int usage() {
    std::fprintf(stderr,
                 "usage: ember-store-mount --manifest URL [--manifest-sha256 HEX] --at DIR "
                 "[--cache DIR [--cache-bytes N]] [--fetcher PATH] [--threads N]\n");
    return 2;
}

Result<int> run(const snapshot::StoreOptions& options, const std::string& at, unsigned threads) {
    // SIGTERM and SIGINT end the serving through a signalfd (ReadOnlyMount::serve watches it).
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    if (::pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr) != 0)
        return fail("blocking SIGTERM and SIGINT");
    UniqueFd stop(::signalfd(-1, &stop_signals, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!stop.valid()) return fail_errno("signalfd");

    auto opened = snapshot::OpenedStore::open(options);
    EMBER_TRY(opened);
    if (!(*opened)->unleased().empty())
        std::fprintf(stderr,
                     "ember-store-mount: no lease on the manifest (%s): a collection of the store "
                     "may remove chunks its drives have yet to read\n",
                     (*opened)->unleased().c_str());
    const snapshot::Manifest& m = (*opened)->manifest();
    if (m.drives.empty())
        return fail("--manifest " + options.manifest_url +
                    ": no drive went into the store with this snapshot (ember-snapshot push "
                    "--drive ID)");
    std::vector<std::unique_ptr<snapshot::ChunkedImage>> images;
    std::vector<snapshot::ServedFile> files;
    for (const auto& d : m.drives) {
        images.push_back(std::make_unique<snapshot::ChunkedImage>(m, d.image, (*opened)->chunks()));
        auto* image = images.back().get();
        files.push_back({d.id, d.image.bytes, [image](uint64_t offset, std::span<uint8_t> out) {
                             return image->read(offset, out);
                         }});
    }
    auto filter = snapshot::handler_filter();
    EMBER_TRY(filter, "seccomp");
    auto mount = snapshot::ReadOnlyMount::mount(at, std::move(files));
    EMBER_TRY(mount, "--at " + at);
    // From here on it reads chunks, writes the cache, talks to a fetcher already started and
    // answers the kernel: ember-uffd's work, under ember-uffd's filter.
    EMBER_TRY(seccomp::install_on_every_thread(*filter, "handler"));
    std::fprintf(stderr, "ember-store-mount: serving %zu drive%s at %s\n", m.drives.size(),
                 m.drives.size() == 1 ? "" : "s", at.c_str());

    std::atomic<uint64_t> failures{0};
    auto stopped =
        (*mount)->serve(threads, stop.get(), [&](const snapshot::ServedFile& f, const Error& e) {
            if (failures.fetch_add(1) < kMostReported)
                std::fprintf(stderr, "ember-store-mount: drive %s: a read failed: %s\n",
                             f.name.c_str(), e.message.c_str());
        });
    EMBER_TRY(stopped);
    // Unmounted before the counts, so that nothing reads on meanwhile.
    (*mount)->unmount();
    for (size_t i = 0; i < images.size(); ++i) {
        const auto c = images[i]->counts();
        std::fprintf(stderr,
                     "ember-store-mount: drive %s: %llu reads answered, %llu failed; %llu chunks "
                     "(%llu bytes) brought in\n",
                     m.drives[i].id.c_str(), static_cast<unsigned long long>(c.reads),
                     static_cast<unsigned long long>(c.failed),
                     static_cast<unsigned long long>(c.fetched),
                     static_cast<unsigned long long>(c.fetched_bytes));
    }
    if (auto* cache = (*opened)->cache()) {
        // Its counts once what it holds back is written: what went past the bound went then.
        cache->flush();
        std::fprintf(stderr, "ember-store-mount: the cache: %s\n",
                     describe(cache->counts()).c_str());
    }
    if (*stopped) {
        // A read still waiting on the store (its fetcher's tries, 45 s at most) would hold the
        // exit back: the counts are out, the cache written and the folder unmounted, so nothing
        // is lost by not waiting. The fetcher ends at its pipe's end.
        std::fflush(stderr);
        ::_exit(0);
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    // A fetcher that dies leaves a pipe with no reader: EPIPE says so, where SIGPIPE would end
    // the mount, and every read of its drives, without a word.
    ::signal(SIGPIPE, SIG_IGN);
    snapshot::StoreOptions options;
    std::string at;
    uint64_t threads = busy_threads();
    auto parsed = tools::parse_options(
        argc, argv, 1,
        {{"--manifest", &options.manifest_url},
         {"--manifest-sha256", &options.manifest_sha256},
         {"--at", &at},
         {"--cache", &options.cache},
         {"--fetcher", &options.fetcher},
         {"--cache-bytes",
          tools::WholeNumber{.out = &options.cache_bytes, .what = "a number of bytes"}},
         {"--threads",
          tools::WholeNumber{
              .out = &threads,
              .max = snapshot::ReadOnlyMount::kMaxThreads,
              .what = "1 to " + std::to_string(snapshot::ReadOnlyMount::kMaxThreads)}}});
    if (!parsed) {
        std::fprintf(stderr, "ember-store-mount: %s\n", parsed.error().message.c_str());
        return 2;
    }
    if (!*parsed) return usage();
    if (options.manifest_url.empty() || at.empty()) return usage();
    if (options.fetcher.empty()) options.fetcher = snapshot::FetcherStore::beside_this_program();
    auto r = run(options, at, static_cast<unsigned>(threads));
    if (!r) {
        std::fprintf(stderr, "ember-store-mount: %s\n", r.error().message.c_str());
        return 1;
    }
    return *r;
}
