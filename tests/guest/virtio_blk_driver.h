/* The polling virtio-blk driver the test guests share. */
#pragma once

#include "guest.h"

#define BASE 0xd0000000ull
#define REG(off) (BASE + (off))
#define SECTORS 8

extern uint8_t data[SECTORS * 512];
void fail(const char* why) __attribute__((noreturn));
/* Negotiates and sets up the queue; returns whether FLUSH was negotiated. */
int blk_init(void);
/* One request (type 0 read, 1 write, 4 flush) on `data`; returns the status byte. */
uint8_t request(uint32_t type, uint64_t sector, int with_data, int device_writes_data);
