/* For the log's limits (issue 63): misconfigures its virtio-blk device LOOPS times, each way a
 * driver can: a queue of size 3 (not a power of two) made ready and DRIVER_OK, which ember refuses
 * with a warning; then a good queue whose available index has run 1000 ahead of what the device
 * used, kicked, which ember takes for a broken ring with another. Then says "misconfig: done". */
#include "guest.h"
#include "virtq.h"

#define BASE 0xd0000000ull
#define REG(off) (BASE + (off))
#define LOOPS 3000

static struct virtq_desc desc[VIRTQ_SIZE] __attribute__((aligned(16)));
static struct virtq_avail avail __attribute__((aligned(2)));
static struct virtq_used used __attribute__((aligned(4096)));

static void set_up(uint32_t size) {
    mmio_write32(REG(0x070), 0); /* reset */
    mmio_write32(REG(0x070), 1 | 2);
    mmio_write32(REG(0x024), 1);
    mmio_write32(REG(0x020), 1); /* VERSION_1 */
    mmio_write32(REG(0x070), 1 | 2 | 8);
    mmio_write32(REG(0x030), 0);
    mmio_write32(REG(0x038), size);
    mmio_write32(REG(0x080), (uint32_t)(uint64_t)desc);
    mmio_write32(REG(0x084), 0);
    mmio_write32(REG(0x090), (uint32_t)(uint64_t)&avail);
    mmio_write32(REG(0x094), 0);
    mmio_write32(REG(0x0a0), (uint32_t)(uint64_t)&used);
    mmio_write32(REG(0x0a4), 0);
    mmio_write32(REG(0x044), 1);
    mmio_write32(REG(0x070), 1 | 2 | 8 | 4); /* DRIVER_OK */
}

int guest_main(void) {
    map_high_mmio();
    if (mmio_read32(REG(0x000)) != 0x74726976 || mmio_read32(REG(0x008)) != 2) {
        puts("misconfig: FAIL: no virtio-blk device\n");
        guest_reset();
    }
    for (int i = 0; i < LOOPS; ++i) {
        set_up(3);
        set_up(VIRTQ_SIZE);
        *(volatile uint16_t*)&avail.idx = (uint16_t)(*(volatile uint16_t*)&used.idx + 1000);
        __asm__ volatile("mfence" ::: "memory");
        mmio_write32(REG(0x050), 0);
    }
    puts("misconfig: done\n");
    guest_reset();
}
