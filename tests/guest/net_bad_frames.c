/* For virtio-net's refused frames (issue 63): a polling driver for the device at 0xd0000000 that
 * sends ROUNDS rounds of every kind of bad frame a guest can (a bare virtio-net header and a frame
 * shorter than an Ethernet header, both runts; a GSO type no kernel knows; a checksum offset past
 * the frame; a chain with a device-writable buffer), each round followed by a good frame (EtherType
 * 0x88b5, "good <round>"). Then it says "net: sent", and prints the payload of the first 0x88b5
 * frame it receives, as virtio_net.c does: its network still works both ways. */
#include "guest.h"
#include "virtq.h"

#define BASE 0xd0000000ull
#define REG(off) (BASE + (off))
#define QSIZE VIRTQ_SIZE
#define HDR 12
#define BUF 2048
#define ROUNDS 300
#define KINDS 6

static struct virtq_desc rx_desc[QSIZE] __attribute__((aligned(16))),
    tx_desc[QSIZE] __attribute__((aligned(16)));
static struct virtq_avail rx_avail __attribute__((aligned(2))),
    tx_avail __attribute__((aligned(2)));
static struct virtq_used rx_used __attribute__((aligned(4096))),
    tx_used __attribute__((aligned(4096)));
static uint8_t rx_bufs[QSIZE][BUF] __attribute__((aligned(4096)));
static uint8_t tx_bufs[KINDS][BUF];
static uint8_t mac[6];

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

/* An Ethernet frame to everyone from the guest, of EtherType 0x88b5, at `f`; its length. */
static uint32_t ethernet(uint8_t* f, const char* payload) {
    uint32_t n = 0;
    for (int i = 0; i < 6; ++i) f[i] = 0xff, f[6 + i] = mac[i];
    f[12] = 0x88;
    f[13] = 0xb5;
    while (payload[n]) f[14 + n] = (uint8_t)payload[n], ++n;
    return 14 + n;
}

static void put(uint16_t i, uint8_t* buf, uint32_t len, uint16_t flags) {
    tx_desc[i] = (struct virtq_desc){(uint64_t)buf, len, flags, 0};
    tx_avail.ring[tx_avail.idx % QSIZE] = i;
    __asm__ volatile("" ::: "memory");
    *(volatile uint16_t*)&tx_avail.idx = (uint16_t)(tx_avail.idx + 1);
}

int guest_main(void) {
    map_high_mmio();
    if (mmio_read32(REG(0x000)) != 0x74726976 || mmio_read32(REG(0x008)) != 1)
        fail("no virtio-net device");
    mmio_write32(REG(0x070), 1 | 2);
    mmio_write32(REG(0x024), 0);
    mmio_write32(REG(0x020), (1u << 5) | 1u); /* MAC, CSUM */
    mmio_write32(REG(0x024), 1);
    mmio_write32(REG(0x020), 1); /* VERSION_1 */
    mmio_write32(REG(0x070), 1 | 2 | 8);
    if (!(mmio_read32(REG(0x070)) & 8)) fail("features refused");
    setup_queue(0, rx_desc, &rx_avail, &rx_used);
    setup_queue(1, tx_desc, &tx_avail, &tx_used);
    mmio_write32(REG(0x070), 1 | 2 | 8 | 4);
    for (int i = 0; i < 6; ++i) mac[i] = *(volatile uint8_t*)(REG(0x100) + i);

    for (uint16_t round = 0; round < ROUNDS; ++round) {
        for (int k = 0; k < KINDS; ++k)
            for (int i = 0; i < HDR; ++i) tx_bufs[k][i] = 0;
        /* 0: a bare header; 1: a frame of 10 bytes */
        put(0, tx_bufs[0], HDR, 0);
        put(1, tx_bufs[1], HDR + 10, 0);
        /* 2: GSO type 7, which no kernel has */
        tx_bufs[2][1] = 7;
        put(2, tx_bufs[2], HDR + ethernet(tx_bufs[2] + HDR, "bad gso"), 0);
        /* 3: NEEDS_CSUM with the checksum's offset past the frame's end */
        tx_bufs[3][0] = 1;
        tx_bufs[3][6] = 0x00;
        tx_bufs[3][7] = 0x70;
        put(3, tx_bufs[3], HDR + ethernet(tx_bufs[3] + HDR, "bad csum"), 0);
        /* 4: a TX chain with a buffer the device may write */
        put(4, tx_bufs[4], HDR + ethernet(tx_bufs[4] + HDR, "writable"), 2);
        /* 5: a good one */
        char good[16];
        const char* word = "good ";
        int n = 0;
        while (word[n]) good[n] = word[n], ++n;
        uint16_t r = round, digits = 0;
        char rev[6];
        do rev[digits++] = (char)('0' + r % 10), r /= 10;
        while (r);
        for (int i = 0; i < digits; ++i) good[n++] = rev[digits - 1 - i];
        good[n] = 0;
        put(5, tx_bufs[5], HDR + ethernet(tx_bufs[5] + HDR, good), 0);
        __asm__ volatile("mfence" ::: "memory");
        mmio_write32(REG(0x050), 1);
        for (uint64_t spins = 0; *(volatile uint16_t*)&tx_used.idx != tx_avail.idx; ++spins)
            if (spins > SPINS_BEFORE_GIVING_UP) fail("frames not given back");
    }
    puts("net: sent\n");

    for (uint16_t i = 0; i < QSIZE; ++i) {
        rx_desc[i] = (struct virtq_desc){(uint64_t)rx_bufs[i], BUF, 2 /* WRITE */, 0};
        rx_avail.ring[i] = i;
    }
    __asm__ volatile("" ::: "memory");
    *(volatile uint16_t*)&rx_avail.idx = QSIZE;
    mmio_write32(REG(0x050), 0);
    for (uint16_t seen = 0;;) {
        for (uint64_t spins = 0; *(volatile uint16_t*)&rx_used.idx == seen; ++spins)
            if (spins > SPINS_BEFORE_GIVING_UP) fail("nothing received");
        uint32_t id = rx_used.ring[seen % QSIZE].id, len = rx_used.ring[seen % QSIZE].len;
        ++seen;
        const uint8_t* f = rx_bufs[id] + HDR;
        if (id >= QSIZE || len < HDR + 14 || f[12] != 0x88 || f[13] != 0xb5) continue;
        puts("net: received ");
        for (uint32_t i = 14; i < len - HDR; ++i) putc((char)f[i]);
        puts("\n");
        return 0;
    }
}
