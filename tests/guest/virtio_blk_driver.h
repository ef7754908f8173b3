/* The polling virtio-blk driver the test guests share: any number of devices, each with its
 * own queue and up to BLK_SLOTS requests in flight, a request a slot (three descriptors). */
#pragma once

#include "guest.h"

/* Room for BLK_SLOTS = 21 requests in flight (blk_stall holds that many). */
#define VIRTQ_SIZE 64
#include "virtq.h"

#define BASE 0xd0000000ull
#define REG(off) (BASE + (off))
#define SECTORS 8
#define BLK_SLOTS (VIRTQ_SIZE / 3)

struct blk_dev {
    struct virtq_desc descs[VIRTQ_SIZE] __attribute__((aligned(16)));
    struct virtq_avail avail __attribute__((aligned(2)));
    struct virtq_used used __attribute__((aligned(4096)));
    uint64_t base;
    struct {
        uint32_t type, ioprio;
        uint64_t sector;
    } header[BLK_SLOTS];
    volatile uint8_t status[BLK_SLOTS];
    uint16_t used_before; /* the used index when the last blk_submit() was made */
};

extern uint8_t data[SECTORS * 512];
void fail(const char* why) __attribute__((noreturn));
/* Negotiates and sets up the device at `base`; returns whether FLUSH was negotiated. */
int blk_dev_init(struct blk_dev* dev, uint64_t base);
/* Makes a request (type 0 read, 1 write, 4 flush) on `len` bytes at `buf` (none when len is 0)
 * in slot 0 without waiting for it. */
void blk_submit(struct blk_dev* dev, uint32_t type, uint64_t sector, uint8_t* buf, uint32_t len,
                int device_writes_data);
/* The same in `slot` (below BLK_SLOTS), whose status is dev->status[slot] once used. */
void blk_submit_slot(struct blk_dev* dev, unsigned slot, uint32_t type, uint64_t sector,
                     uint8_t* buf, uint32_t len, int device_writes_data);
/* How many requests have completed since the last blk_submit(). */
uint16_t blk_completed(const struct blk_dev* dev);
/* Whether the request of the last blk_submit() has completed. */
int blk_done(const struct blk_dev* dev);
/* Waits for it (fails the guest if it never completes); its status byte. */
uint8_t blk_wait(struct blk_dev* dev);

/* The same on the first device, at BASE, with `data`: */
int blk_init(void);
uint8_t request(uint32_t type, uint64_t sector, int with_data, int device_writes_data);
