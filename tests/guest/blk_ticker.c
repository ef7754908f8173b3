/* For snapshot round trips with a disk: each tick writes a sector stamped with the tick number
 * through virtio-blk, reads it back, checks it, and prints "blk tick N ok". */
#include "virtio_blk_driver.h"

int guest_main(void) {
    blk_init();
    for (uint64_t n = 1;; ++n) {
        for (volatile uint32_t d = 0; d < 20000; ++d) {
        }
        for (unsigned i = 0; i < sizeof data; ++i) data[i] = (uint8_t)(n + i);
        if (request(1, 8 * (n % 16), 1, 0) != 0) fail("write failed");
        for (unsigned i = 0; i < sizeof data; ++i) data[i] = 0;
        if (request(0, 8 * (n % 16), 1, 1) != 0) fail("read failed");
        for (unsigned i = 0; i < sizeof data; ++i)
            if (data[i] != (uint8_t)(n + i)) fail("read back different bytes");
        puts("blk tick ");
        put_dec(n);
        puts(" ok\n");
    }
}
