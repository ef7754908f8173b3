/* For drives served from a store: reads the 4 KiB blocks of a 4 MiB read-only disk in a scattered
 * order, without end, and prints "ro BLOCK HASH" for each, HASH the FNV-1a of its bytes, which the
 * test checks against the image. A failed read prints "ro BLOCK failed". */
#include "virtio_blk_driver.h"

#define BLOCKS 1024

int guest_main(void) {
    blk_init();
    for (uint64_t n = 0;; ++n) {
        for (volatile uint32_t d = 0; d < 20000; ++d) {
        }
        const uint64_t block = (n * 37) % BLOCKS;
        puts("ro ");
        put_dec(block);
        if (request(0, block * 8, 1, 1) != 0) {
            puts(" failed\n");
            continue;
        }
        uint32_t hash = 2166136261u;
        for (unsigned i = 0; i < sizeof data; ++i) hash = (hash ^ data[i]) * 16777619u;
        puts(" ");
        put_dec(hash);
        puts("\n");
    }
}
