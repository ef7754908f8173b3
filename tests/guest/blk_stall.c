/* For the stalled-drive tests: makes BLK_SLOTS reads of the first drive at once, 128 KiB apart,
 * whose image the host holds unanswered (more than io-wq's default bounded workers on a small
 * host), and while they are in flight writes and reads back the second drive, printing "healthy
 * drive tick N ok" every 16 rounds. Once every read of the first drive has completed it checks
 * their bytes (byte i of the image is i % 251) and prints "stalled drive answered, bytes ok". */
#include "virtio_blk_driver.h"

#define STRIDE_SECTORS 256u /* 128 KiB: past the kernel's readahead of the read before */

static struct blk_dev stalled, healthy;
static uint8_t slow[BLK_SLOTS][4096] __attribute__((aligned(4096)));
static uint8_t fast[512] __attribute__((aligned(512)));

int guest_main(void) {
    blk_dev_init(&stalled, BASE);
    blk_dev_init(&healthy, BASE + 0x1000);
    stalled.used_before = *(volatile uint16_t*)&stalled.used.idx;
    for (unsigned s = 0; s < BLK_SLOTS; ++s)
        blk_submit_slot(&stalled, s, 0, s * STRIDE_SECTORS, slow[s], sizeof slow[s], 1);
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
        if (blk_completed(&stalled) == BLK_SLOTS) {
            for (unsigned s = 0; s < BLK_SLOTS; ++s) {
                if (stalled.status[s] != 0) fail("a stalled read failed");
                const uint64_t at = (uint64_t)s * STRIDE_SECTORS * 512;
                for (unsigned i = 0; i < sizeof slow[s]; ++i)
                    if (slow[s][i] != (uint8_t)((at + i) % 251))
                        fail("a stalled read's bytes differ");
            }
            puts("stalled drive answered, bytes ok\n");
            return 0;
        }
    }
}
