// ember-snapshot-merge BASE DIFF: applies a Diff snapshot's memory file onto its base (the memory
// file of the snapshot it follows), so the base can be loaded with the Diff's state file. Copies
// only the diff's data extents: its holes are pages that did not change.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: ember-snapshot-merge BASE_MEMORY_FILE DIFF_MEMORY_FILE\n");
        return 2;
    }
    int base = ::open(argv[1], O_WRONLY | O_CLOEXEC);
    int diff = ::open(argv[2], O_RDONLY | O_CLOEXEC);
    if (base < 0 || diff < 0) {
        std::fprintf(stderr, "ember-snapshot-merge: %s: %s\n", base < 0 ? argv[1] : argv[2],
                     std::strerror(errno));
        return 1;
    }
    struct stat b{}, d{};
    ::fstat(base, &b);
    ::fstat(diff, &d);
    if (b.st_size != d.st_size) {
        std::fprintf(
            stderr, "ember-snapshot-merge: %s is %lld bytes and %s %lld: not a diff of that base\n",
            argv[1], static_cast<long long>(b.st_size), argv[2], static_cast<long long>(d.st_size));
        return 1;
    }
    std::vector<char> buf(1 << 20);
    off_t pos = 0;
    long long copied = 0;
    while (pos < d.st_size) {
        off_t data = ::lseek(diff, pos, SEEK_DATA);
        if (data < 0) break;  // ENXIO: no more data
        off_t hole = ::lseek(diff, data, SEEK_HOLE);
        for (off_t at = data; at < hole;) {
            ssize_t n = ::pread(diff, buf.data(),
                                std::min<off_t>(hole - at, static_cast<off_t>(buf.size())), at);
            if (n <= 0 || ::pwrite(base, buf.data(), static_cast<size_t>(n), at) != n) {
                std::fprintf(stderr, "ember-snapshot-merge: copying at %lld: %s\n",
                             static_cast<long long>(at), std::strerror(errno));
                return 1;
            }
            at += n;
            copied += n;
        }
        pos = hole;
    }
    if (::fsync(base) < 0) {
        std::fprintf(stderr, "ember-snapshot-merge: %s: %s\n", argv[1], std::strerror(errno));
        return 1;
    }
    std::printf("merged %lld bytes of %s into %s\n", copied, argv[2], argv[1]);
    return 0;
}
