/* Writes a pattern to sectors 8-15 through the virtio-blk driver, flushes, reads it back and
 * compares, and reports over COM1. The host test then checks the image. */
#include "virtio_blk_driver.h"

int guest_main(void) {
    int flush = blk_init();
    uint64_t capacity =
        (uint64_t)mmio_read32(REG(0x100)) | ((uint64_t)mmio_read32(REG(0x104)) << 32);
    puts("virtio-blk: capacity ");
    put_dec(capacity);
    puts(" sectors\n");

    for (unsigned i = 0; i < sizeof data; ++i) data[i] = (uint8_t)(i * 7 + 3);
    if (request(1, 8, 1, 0) != 0) fail("write failed");
    if (flush && request(4, 0, 0, 0) != 0) fail("flush failed");
    for (unsigned i = 0; i < sizeof data; ++i) data[i] = 0;
    if (request(0, 8, 1, 1) != 0) fail("read failed");
    for (unsigned i = 0; i < sizeof data; ++i)
        if (data[i] != (uint8_t)(i * 7 + 3)) fail("read back different bytes");
    if (request(0, capacity, 1, 1) != 1) fail("a read past the end did not fail");
    puts(flush ? "virtio-blk: pattern written, flushed and read back\n"
               : "virtio-blk: pattern written and read back\n");
    return 0;
}
