// ember-snapshot-merge BASE DIFF: applies a Diff snapshot's memory file onto its base (the memory
// file of the snapshot it follows), so the base can be loaded with the Diff's state file. Copies
// only the diff's data extents: its holes are pages that did not change.
#include <fcntl.h>

#include <cstdio>

#include "core/base/open_file.h"
#include "snapshot/memory_merge.h"

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
