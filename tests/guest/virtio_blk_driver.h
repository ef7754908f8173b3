/* The polling virtio-blk driver the test guests share: any number of devices, each with its
 * own queue and at most one request in flight. */
#pragma once

#include "guest.h"
#include "virtq.h"

#define BASE 0xd0000000ull
#define REG(off) (BASE + (off))
#define SECTORS 8

struct blk_dev {
    struct virtq_desc descs[VIRTQ_SIZE] __attribute__((aligned(16)));
    struct virtq_avail avail __attribute__((aligned(2)));
    struct virtq_used used __attribute__((aligned(4096)));
    uint64_t base;
    struct {
        uint32_t type, ioprio;
        uint64_t sector;
    } header;
    volatile uint8_t status;
    uint16_t used_before; /* the used index when the request in flight was made */
};

extern uint8_t data[SECTORS * 512];
void fail(const char* why) __attribute__((noreturn));
/* Negotiates and sets up the device at `base`; returns whether FLUSH was negotiated. */
int blk_dev_init(struct blk_dev* dev, uint64_t base);
/* Makes a request (type 0 read, 1 write, 4 flush) on `len` bytes at `buf` (none when len is 0)
 * without waiting for it. */
void blk_submit(struct blk_dev* dev, uint32_t type, uint64_t sector, uint8_t* buf, uint32_t len,
                int device_writes_data);
/* Whether the request in flight has completed. */
int blk_done(const struct blk_dev* dev);
/* Waits for the request in flight (fails the guest if it never completes); its status byte. */
uint8_t blk_wait(struct blk_dev* dev);

/* The same on the first device, at BASE, with `data`: */
int blk_init(void);
uint8_t request(uint32_t type, uint64_t sector, int with_data, int device_writes_data);
