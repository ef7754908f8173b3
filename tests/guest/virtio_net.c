/* A minimal polling virtio-net driver for the device at 0xd0000000: negotiates VERSION_1 and MAC,
 * posts receive buffers, sends one frame (EtherType 0x88b5) and then prints the payload of the
 * first 0x88b5 frame it receives. The host test sees the first and sends the second. */
#include "guest.h"
#include "virtq.h"

#define BASE 0xd0000000ull
#define REG(off) (BASE + (off))
#define QSIZE VIRTQ_SIZE
#define HDR 12
#define BUF 2048

static struct virtq_desc rx_desc[QSIZE] __attribute__((aligned(16))),
    tx_desc[QSIZE] __attribute__((aligned(16)));
static struct virtq_avail rx_avail __attribute__((aligned(2))),
    tx_avail __attribute__((aligned(2)));
static struct virtq_used rx_used __attribute__((aligned(4096))),
    tx_used __attribute__((aligned(4096)));
static uint8_t rx_bufs[QSIZE][BUF] __attribute__((aligned(4096)));
static uint8_t tx_buf[BUF];

static void fail(const char* why) {
    puts("net: FAIL: ");
    puts(why);
    puts("\n");
    guest_reset();
}

static void setup_queue(uint32_t index, struct virtq_desc* d, struct virtq_avail* a,
                        struct virtq_used* u) {
    mmio_write32(REG(0x030), index);
    if (mmio_read32(REG(0x034)) < QSIZE) fail("queue too small");
    mmio_write32(REG(0x038), QSIZE);
    mmio_write32(REG(0x080), (uint32_t)(uint64_t)d);
    mmio_write32(REG(0x084), 0);
    mmio_write32(REG(0x090), (uint32_t)(uint64_t)a);
    mmio_write32(REG(0x094), 0);
    mmio_write32(REG(0x0a0), (uint32_t)(uint64_t)u);
    mmio_write32(REG(0x0a4), 0);
    mmio_write32(REG(0x044), 1);
}

int guest_main(void) {
    map_high_mmio();
    if (mmio_read32(REG(0x000)) != 0x74726976 || mmio_read32(REG(0x008)) != 1)
        fail("no virtio-net device");
    mmio_write32(REG(0x070), 1 | 2);
    mmio_write32(REG(0x024), 0);
    mmio_write32(REG(0x020), 1u << 5); /* MAC */
    mmio_write32(REG(0x024), 1);
    mmio_write32(REG(0x020), 1); /* VERSION_1 */
    mmio_write32(REG(0x070), 1 | 2 | 8);
    if (!(mmio_read32(REG(0x070)) & 8)) fail("features refused");
    setup_queue(0, rx_desc, &rx_avail, &rx_used);
    setup_queue(1, tx_desc, &tx_avail, &tx_used);
    mmio_write32(REG(0x070), 1 | 2 | 8 | 4);

    uint8_t mac[6];
    for (int i = 0; i < 6; ++i) mac[i] = *(volatile uint8_t*)(REG(0x100) + i);

    for (uint16_t i = 0; i < QSIZE; ++i) {
        rx_desc[i] = (struct virtq_desc){(uint64_t)rx_bufs[i], BUF, 2 /* WRITE */, 0};
        rx_avail.ring[i] = i;
    }
    __asm__ volatile("" ::: "memory");
    *(volatile uint16_t*)&rx_avail.idx = QSIZE;
    mmio_write32(REG(0x050), 0);

    static const char hello[] = "hello from the guest";
    uint8_t* f = tx_buf + HDR;
    for (int i = 0; i < 6; ++i) f[i] = 0xff, f[6 + i] = mac[i];
    f[12] = 0x88;
    f[13] = 0xb5;
    for (unsigned i = 0; i < sizeof hello - 1; ++i) f[14 + i] = (uint8_t)hello[i];
    tx_desc[0] = (struct virtq_desc){(uint64_t)tx_buf, HDR + 14 + sizeof hello - 1, 0, 0};
    tx_avail.ring[0] = 0;
    __asm__ volatile("" ::: "memory");
    *(volatile uint16_t*)&tx_avail.idx = 1;
    __asm__ volatile("mfence" ::: "memory");
    mmio_write32(REG(0x050), 1);
    for (uint64_t spins = 0; *(volatile uint16_t*)&tx_used.idx == 0; ++spins)
        if (spins > SPINS_BEFORE_GIVING_UP) fail("frame not sent");
    puts("net: sent\n");

    for (uint16_t seen = 0;;) {
        for (uint64_t spins = 0; *(volatile uint16_t*)&rx_used.idx == seen; ++spins)
            if (spins > SPINS_BEFORE_GIVING_UP) fail("nothing received");
        uint32_t id = rx_used.ring[seen % QSIZE].id, len = rx_used.ring[seen % QSIZE].len;
        ++seen;
        const uint8_t* r = rx_bufs[id] + HDR;
        if (id >= QSIZE || len < HDR + 14 || r[12] != 0x88 || r[13] != 0xb5) continue;
        puts("net: received ");
        for (uint32_t i = 14; i < len - HDR; ++i) putc((char)r[i]);
        puts("\n");
        return 0;
    }
}
