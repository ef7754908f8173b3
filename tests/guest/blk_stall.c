/* For the stalled-drive test: reads sector 8 of the first drive, whose image the host holds
 * unanswered, and while that read is in flight writes and reads back the second drive, printing
 * "healthy drive tick N ok" every 16 rounds. Once the first read completes it checks the bytes
 * (byte i of the image is i % 251) and prints "stalled drive answered, bytes ok". */
#include "virtio_blk_driver.h"

static struct blk_dev stalled, healthy;
static uint8_t slow[4096] __attribute__((aligned(4096)));
static uint8_t fast[512] __attribute__((aligned(512)));

int guest_main(void) {
    blk_dev_init(&stalled, BASE);
    blk_dev_init(&healthy, BASE + 0x1000);
    blk_submit(&stalled, 0, 8, slow, sizeof slow, 1);
    puts("reading the stalled drive\n");
    for (uint64_t n = 1;; ++n) {
        for (unsigned i = 0; i < sizeof fast; ++i) fast[i] = (uint8_t)(n + i);
        blk_submit(&healthy, 1, n % 64, fast, sizeof fast, 0);
        if (blk_wait(&healthy) != 0) fail("healthy write failed");
        for (unsigned i = 0; i < sizeof fast; ++i) fast[i] = 0;
        blk_submit(&healthy, 0, n % 64, fast, sizeof fast, 1);
        if (blk_wait(&healthy) != 0) fail("healthy read failed");
        for (unsigned i = 0; i < sizeof fast; ++i)
            if (fast[i] != (uint8_t)(n + i)) fail("healthy drive read back different bytes");
        if (n % 16 == 0) {
            puts("healthy drive tick ");
            put_dec(n / 16);
            puts(" ok\n");
        }
        if (blk_done(&stalled)) {
            if (blk_wait(&stalled) != 0) fail("the stalled read failed");
            for (unsigned i = 0; i < sizeof slow; ++i)
                if (slow[i] != (uint8_t)((4096 + i) % 251)) fail("the stalled read's bytes differ");
            puts("stalled drive answered, bytes ok\n");
            return 0;
        }
    }
}
