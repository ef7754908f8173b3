// A snapshot of a store made whole in the host's chunk cache, for a load from local files (the File
// backend): its state file, its memory file (sparse: chunks of zeros are holes) and its working
// set, in the cache's folder views/<SHA-256 of the manifest's text>-<what its drives are>/. An
// agent that names the snapshot by that SHA-256 (which push prints) finds its view without asking
// the store. A restore through ember-uffd copies every page into the guest; from the view, ember
// maps the memory file as it maps any snapshot's, so a restore on a host that holds the function is
// a local restore, and every clone of it shares the page cache's one copy of its pages instead of
// holding its own.
//
// A view is made from chunks checked against their names (through the cache, which fetches what it
// lacks), under a temporary name, and renamed into place whole; its memory file carries the boot's
// ID as a chunk does. A view without this boot's ID (a host's crash may have left its bytes short)
// is made again, never read; a folder that takes no user xattrs takes no views. Its files are
// read-only: every clone maps the memory file and would see a write to it. It counts against the
// cache's bound and goes, least recently used first, as chunks do: renamed aside whole first, so a
// reader finds all of it or none. A VM that maps it keeps its memory file's pages, and their
// blocks on the disk, while it runs: the bound counts only what is still named.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/base/error.h"
#include "snapshot/store/chunk_cache.h"
#include "snapshot/store/manifest.h"
#include "snapshot/store/store_state.h"

namespace ember::snapshot {

inline constexpr const char* kViewFolder = "views";

struct SnapshotView {
    std::string state;
    std::string memory;
    std::string working_set;  // empty where the manifest names none
    bool made = false;        // made now, not found made this boot
    uint64_t bytes = 0;       // what it takes on the disk
};

// The view of `manifest`, whose text's SHA-256 is `digest`, in `cache`'s folder, found or made;
// `fetchers` chunks are read at once. A view larger than half the cache's bound is refused: it
// would push out all else. Its state file has its drives as `drives` says (store_state.h), which
// is part of the view's name: views/<digest>-<16 hex digits of a SHA-256 of the root and the
// writable drives>.
Result<SnapshotView> open_view(ChunkCache& cache, const Manifest& manifest, const ChunkId& digest,
                               const HostDrives& drives, unsigned fetchers);
// The view of the manifest whose text's SHA-256 is `digest`, with its drives as `drives` says,
// where it was made (or found) this boot.
std::optional<SnapshotView> find_view(const ChunkCache& cache, const ChunkId& digest,
                                      const HostDrives& drives);
// A view's folder name (for the cache's eviction): 64 hex digits, then "-" and 16 more; or the 64
// alone, a view of an ember before drive roots, counted and let go but never found.
bool is_view_name(std::string_view name);

// For the cache's eviction, in its folder `views`: a view folder's (or a temporary one's) last use
// (its memory file's time, else the folder's) and bytes on the disk; removing a view, renamed
// aside first; and removing a temporary folder of a maker that died.
struct ViewUse {
    timespec used;
    uint64_t bytes;
};
std::optional<ViewUse> view_use(int views, const std::string& name);
// Whether it was there to remove.
bool remove_view(int views, const std::string& name);
void remove_view_folder(int views, const std::string& name);

}  // namespace ember::snapshot
