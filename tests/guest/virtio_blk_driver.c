/* A minimal polling virtio-mmio driver for the first virtio-blk device at 0xd0000000, shared by
 * the virtio-blk test guests. */
#include "virtio_blk_driver.h"
#include "virtq.h"

#define QSIZE VIRTQ_SIZE

static struct virtq_desc descs[QSIZE] __attribute__((aligned(16)));
static struct virtq_avail avail __attribute__((aligned(2)));
static struct virtq_used used __attribute__((aligned(4096)));

static struct {
    uint32_t type, ioprio;
    uint64_t sector;
} header;
uint8_t data[SECTORS * 512] __attribute__((aligned(4096)));
static volatile uint8_t status;

void fail(const char* why) {
    puts("virtio-blk: FAIL: ");
    puts(why);
    puts("\n");
    guest_reset();
}

/* One request: header, optional data, status; returns the status byte. */
uint8_t request(uint32_t type, uint64_t sector, int with_data, int device_writes_data) {
    header.type = type;
    header.ioprio = 0;
    header.sector = sector;
    status = 0xff;
    int n = 0;
    descs[n] = (struct virtq_desc){(uint64_t)&header, sizeof header, 1, (uint16_t)(n + 1)};
    ++n;
    if (with_data) {
        descs[n] =
            (struct virtq_desc){(uint64_t)data, sizeof data,
                                (uint16_t)(1 | (device_writes_data ? 2 : 0)), (uint16_t)(n + 1)};
        ++n;
    }
    descs[n] = (struct virtq_desc){(uint64_t)&status, 1, 2, 0};
    uint16_t before = *(volatile uint16_t*)&used.idx;
    avail.ring[avail.idx % QSIZE] = 0;
    __asm__ volatile("" ::: "memory");
    *(volatile uint16_t*)&avail.idx = (uint16_t)(avail.idx + 1);
    __asm__ volatile("mfence" ::: "memory");
    mmio_write32(REG(0x050), 0); /* QueueNotify */
    for (uint64_t spins = 0; *(volatile uint16_t*)&used.idx == before; ++spins)
        if (spins > 100000000ull) fail("no completion");
    mmio_write32(REG(0x064), mmio_read32(REG(0x060))); /* acknowledge any interrupt */
    return status;
}

int blk_init(void) {
    map_high_mmio();
    if (mmio_read32(REG(0x000)) != 0x74726976 || mmio_read32(REG(0x004)) != 2 ||
        mmio_read32(REG(0x008)) != 2)
        fail("no virtio-blk device at 0xd0000000");
    mmio_write32(REG(0x070), 1);     /* ACKNOWLEDGE */
    mmio_write32(REG(0x070), 1 | 2); /* DRIVER */
    mmio_write32(REG(0x014), 0);
    uint32_t low = mmio_read32(REG(0x010));
    mmio_write32(REG(0x014), 1);
    uint32_t high = mmio_read32(REG(0x010));
    if (!(high & 1)) fail("VERSION_1 not offered");
    int flush = (low >> 9) & 1;
    mmio_write32(REG(0x024), 0);
    mmio_write32(REG(0x020), flush ? (1u << 9) : 0);
    mmio_write32(REG(0x024), 1);
    mmio_write32(REG(0x020), 1);
    mmio_write32(REG(0x070), 1 | 2 | 8); /* FEATURES_OK */
    if (!(mmio_read32(REG(0x070)) & 8)) fail("features refused");

    mmio_write32(REG(0x030), 0);
    if (mmio_read32(REG(0x034)) < QSIZE) fail("queue too small");
    mmio_write32(REG(0x038), QSIZE);
    mmio_write32(REG(0x080), (uint32_t)(uint64_t)descs);
    mmio_write32(REG(0x084), 0);
    mmio_write32(REG(0x090), (uint32_t)(uint64_t)&avail);
    mmio_write32(REG(0x094), 0);
    mmio_write32(REG(0x0a0), (uint32_t)(uint64_t)&used);
    mmio_write32(REG(0x0a4), 0);
    mmio_write32(REG(0x044), 1);
    mmio_write32(REG(0x070), 1 | 2 | 8 | 4); /* DRIVER_OK */

    return flush;
}
