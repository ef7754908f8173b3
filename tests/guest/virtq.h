/* The split virtqueue as the test guests' drivers lay it out: eight entries a queue, unless the
 * driver defines VIRTQ_SIZE before it includes this. */
#pragma once

#include <stdint.h>

#ifndef VIRTQ_SIZE
#define VIRTQ_SIZE 8
#endif

struct virtq_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};
struct virtq_avail {
    uint16_t flags, idx, ring[VIRTQ_SIZE], used_event;
};
struct virtq_used {
    uint16_t flags, idx;
    struct {
        uint32_t id, len;
    } ring[VIRTQ_SIZE];
    uint16_t avail_event;
};
