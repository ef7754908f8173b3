/* Drives the tests' fill device (tests/support/fill_device) at 0xd0000000: negotiates, then in
 * three rounds posts a 64-byte writable buffer and reports over COM1 what came back. After the
 * first round it waits for the host to write a non-zero word at GO_ADDR (a test snapshots it
 * there, and lets the restored VM go on). */
#include "guest.h"
#include "virtq.h"

#define REG(off) (0xd0000000ull + (off))
#define QSIZE VIRTQ_SIZE
#define LEN 64
#define GO_ADDR 0x300000ull

static struct virtq_desc descs[QSIZE] __attribute__((aligned(16)));
static struct virtq_avail avail __attribute__((aligned(2)));
static struct virtq_used used __attribute__((aligned(4096)));
static uint8_t buffer[LEN];

static int fail(const char* why) {
    puts("virtio-fill: FAIL: ");
    puts(why);
    puts("\n");
    return 1;
}

int guest_main(void) {
    map_high_mmio();
    if (mmio_read32(REG(0x000)) != 0x74726976 || mmio_read32(REG(0x004)) != 2 ||
        mmio_read32(REG(0x008)) != 4)
        return fail("no fill device at 0xd0000000");
    mmio_write32(REG(0x070), 1 | 2); /* ACKNOWLEDGE | DRIVER */
    mmio_write32(REG(0x014), 1);
    if (!(mmio_read32(REG(0x010)) & 1)) return fail("VERSION_1 not offered");
    mmio_write32(REG(0x024), 1);
    mmio_write32(REG(0x020), 1);
    mmio_write32(REG(0x070), 1 | 2 | 8); /* FEATURES_OK */
    if (!(mmio_read32(REG(0x070)) & 8)) return fail("features refused");
    mmio_write32(REG(0x030), 0);
    if (mmio_read32(REG(0x034)) < QSIZE) return fail("queue too small");
    mmio_write32(REG(0x038), QSIZE);
    mmio_write32(REG(0x080), (uint32_t)(uint64_t)descs);
    mmio_write32(REG(0x090), (uint32_t)(uint64_t)&avail);
    mmio_write32(REG(0x0a0), (uint32_t)(uint64_t)&used);
    mmio_write32(REG(0x044), 1);
    mmio_write32(REG(0x070), 1 | 2 | 8 | 4); /* DRIVER_OK */

    for (uint16_t round = 1; round <= 3; ++round) {
        if (round == 2)
            while (!*(volatile uint64_t*)GO_ADDR) __asm__ volatile("pause");
        for (int i = 0; i < LEN; ++i) ((volatile uint8_t*)buffer)[i] = 0;
        descs[0].addr = (uint64_t)buffer;
        descs[0].len = LEN;
        descs[0].flags = 2; /* device-writable */
        avail.ring[(round - 1) % QSIZE] = 0;
        __asm__ volatile("" ::: "memory");
        *(volatile uint16_t*)&avail.idx = round;
        __asm__ volatile("mfence" ::: "memory");
        mmio_write32(REG(0x050), 0); /* QueueNotify */
        for (uint64_t spins = 0; *(volatile uint16_t*)&used.idx != round; ++spins)
            if (spins > SPINS_BEFORE_GIVING_UP) return fail("no completion");
        if (used.ring[(round - 1) % QSIZE].len != LEN)
            return fail("the device wrote another length");
        for (int i = 0; i < LEN; ++i)
            if (((volatile uint8_t*)buffer)[i] != 0x5a) return fail("the buffer is not filled");
        puts("virtio-fill: round ");
        put_dec(round);
        puts(": 64 bytes of 0x5a\n");
    }
    return 0;
}
