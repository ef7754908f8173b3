// ember-snapshot-merge BASE DIFF: applies a Diff snapshot's memory file onto its base (the memory
// file of the snapshot it follows), so the base can be loaded with the Diff's state file. Copies
// only the diff's data extents: its holes are pages that did not change.
#include <fcntl.h>
#include <sys/xattr.h>

#include <cstdio>

#include "core/base/open_file.h"
#include "snapshot/memory_merge.h"
#include "snapshot/store/chunk_cache.h"

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: ember-snapshot-merge BASE_MEMORY_FILE DIFF_MEMORY_FILE\n");
        return 2;
    }
    auto base = ember::open_file(argv[1], O_WRONLY);
    auto diff = ember::open_file(argv[2], O_RDONLY);
    if (!base || !diff) {
        std::fprintf(stderr, "ember-snapshot-merge: %s: %s\n", base ? argv[2] : argv[1],
                     (base ? diff : base).error().message.c_str());
        return 1;
    }
    // A chunk cache's file (a store's snapshot's view, which clones map and would see the merge
    // in): write-protected, but root writes it anyway.
    if (::fgetxattr(base->get(), ember::snapshot::kCheckedAttr, nullptr, 0) >= 0) {
        std::fprintf(
            stderr,
            "ember-snapshot-merge: %s is a chunk cache's (a store's snapshot's view, which "
            "its clones map): merge onto a copy of it\n",
            argv[1]);
        return 1;
    }
    auto copied = ember::snapshot::merge_diff(base->get(), diff->get());
    if (!copied) {
        std::fprintf(stderr, "ember-snapshot-merge: %s onto %s: %s\n", argv[2], argv[1],
                     copied.error().message.c_str());
        return 1;
    }
    std::printf("merged %llu bytes of %s into %s\n", static_cast<unsigned long long>(*copied),
                argv[2], argv[1]);
    return 0;
}
