// ember-snapshot-merge BASE DIFF: applies a Diff snapshot's memory file onto its base (the memory
// file of the snapshot it follows), so the base can be loaded with the Diff's state file. Copies
// only the diff's data extents: its holes are pages that did not change.
#include <fcntl.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "snapshot/memory_merge.h"
#include "vmm/base/unique_fd.h"

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: ember-snapshot-merge BASE_MEMORY_FILE DIFF_MEMORY_FILE\n");
        return 2;
    }
    ember::UniqueFd base(::open(argv[1], O_WRONLY | O_CLOEXEC));
    ember::UniqueFd diff(::open(argv[2], O_RDONLY | O_CLOEXEC));
    if (!base.valid() || !diff.valid()) {
        std::fprintf(stderr, "ember-snapshot-merge: %s: %s\n", base.valid() ? argv[2] : argv[1],
                     std::strerror(errno));
        return 1;
    }
    auto copied = ember::snapshot::merge_diff(base.get(), diff.get());
    if (!copied) {
        std::fprintf(stderr, "ember-snapshot-merge: %s onto %s: %s\n", argv[2], argv[1],
                     copied.error().message.c_str());
        return 1;
    }
    std::printf("merged %llu bytes of %s into %s\n", static_cast<unsigned long long>(*copied),
                argv[2], argv[1]);
    return 0;
}
