/* A minimal polling virtio-mmio driver for virtio-blk devices, shared by the virtio-blk test
 * guests. */
#include "virtio_blk_driver.h"

#define QSIZE VIRTQ_SIZE

static struct blk_dev first;
uint8_t data[SECTORS * 512] __attribute__((aligned(4096)));

void fail(const char* why) {
    puts("virtio-blk: FAIL: ");
    puts(why);
    puts("\n");
    guest_reset();
}

void blk_submit_slot(struct blk_dev* dev, unsigned slot, uint32_t type, uint64_t sector,
                     uint8_t* buf, uint32_t len, int device_writes_data) {
    dev->header[slot].type = type;
    dev->header[slot].ioprio = 0;
    dev->header[slot].sector = sector;
    dev->status[slot] = 0xff;
    const uint16_t head = (uint16_t)(3 * slot);
    uint16_t n = head;
    dev->descs[n] = (struct virtq_desc){(uint64_t)&dev->header[slot], sizeof dev->header[slot], 1,
                                        (uint16_t)(n + 1)};
    ++n;
    if (len) {
        dev->descs[n] = (struct virtq_desc){
            (uint64_t)buf, len, (uint16_t)(1 | (device_writes_data ? 2 : 0)), (uint16_t)(n + 1)};
        ++n;
    }
    dev->descs[n] = (struct virtq_desc){(uint64_t)&dev->status[slot], 1, 2, 0};
    dev->avail.ring[dev->avail.idx % QSIZE] = head;
    __asm__ volatile("" ::: "memory");
    *(volatile uint16_t*)&dev->avail.idx = (uint16_t)(dev->avail.idx + 1);
    __asm__ volatile("mfence" ::: "memory");
    mmio_write32(dev->base + 0x050, 0); /* QueueNotify */
}

void blk_submit(struct blk_dev* dev, uint32_t type, uint64_t sector, uint8_t* buf, uint32_t len,
                int device_writes_data) {
    dev->used_before = *(volatile uint16_t*)&dev->used.idx;
    blk_submit_slot(dev, 0, type, sector, buf, len, device_writes_data);
}

uint16_t blk_completed(const struct blk_dev* dev) {
    return (uint16_t)(*(volatile const uint16_t*)&dev->used.idx - dev->used_before);
}

int blk_done(const struct blk_dev* dev) {
    return blk_completed(dev) != 0;
}

uint8_t blk_wait(struct blk_dev* dev) {
    /* Also a request a rate limiter holds until the test pauses the guest. */
    for (uint64_t spins = 0; !blk_done(dev); ++spins)
        if (spins > SPINS_BEFORE_GIVING_UP) fail("no completion");
    /* acknowledge any interrupt */
    mmio_write32(dev->base + 0x064, mmio_read32(dev->base + 0x060));
    return dev->status[0];
}

uint8_t request(uint32_t type, uint64_t sector, int with_data, int device_writes_data) {
    blk_submit(&first, type, sector, data, with_data ? sizeof data : 0, device_writes_data);
    return blk_wait(&first);
}

int blk_dev_init(struct blk_dev* dev, uint64_t base) {
    map_high_mmio();
    dev->base = base;
    if (mmio_read32(base + 0x000) != 0x74726976 || mmio_read32(base + 0x004) != 2 ||
        mmio_read32(base + 0x008) != 2) {
        puts("virtio-blk: FAIL: no virtio-blk device at ");
        put_hex(base);
        puts("\n");
        guest_reset();
    }
    mmio_write32(base + 0x070, 1);     /* ACKNOWLEDGE */
    mmio_write32(base + 0x070, 1 | 2); /* DRIVER */
    mmio_write32(base + 0x014, 0);
    uint32_t low = mmio_read32(base + 0x010);
    mmio_write32(base + 0x014, 1);
    uint32_t high = mmio_read32(base + 0x010);
    if (!(high & 1)) fail("VERSION_1 not offered");
    int flush = (low >> 9) & 1;
    mmio_write32(base + 0x024, 0);
    mmio_write32(base + 0x020, flush ? (1u << 9) : 0);
    mmio_write32(base + 0x024, 1);
    mmio_write32(base + 0x020, 1);
    mmio_write32(base + 0x070, 1 | 2 | 8); /* FEATURES_OK */
    if (!(mmio_read32(base + 0x070) & 8)) fail("features refused");

    mmio_write32(base + 0x030, 0);
    if (mmio_read32(base + 0x034) < QSIZE) fail("queue too small");
    mmio_write32(base + 0x038, QSIZE);
    mmio_write32(base + 0x080, (uint32_t)(uint64_t)dev->descs);
    mmio_write32(base + 0x084, 0);
    mmio_write32(base + 0x090, (uint32_t)(uint64_t)&dev->avail);
    mmio_write32(base + 0x094, 0);
    mmio_write32(base + 0x0a0, (uint32_t)(uint64_t)&dev->used);
    mmio_write32(base + 0x0a4, 0);
    mmio_write32(base + 0x044, 1);
    mmio_write32(base + 0x070, 1 | 2 | 8 | 4); /* DRIVER_OK */

    return flush;
}

int blk_init(void) {
    return blk_dev_init(&first, BASE);
}
