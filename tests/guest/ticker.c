/* For snapshot round trips: fills 64 KiB with a pattern, then forever re-checks it and prints
 * "tick N ok". A restored guest must go on from the next N with its memory intact. */
#include "guest.h"

#define REGION ((volatile uint32_t*)0x400000)
#define WORDS (64 * 1024 / 4)

int guest_main(void) {
    uint32_t sum = 0;
    for (uint32_t i = 0; i < WORDS; ++i) {
        REGION[i] = i * 2654435761u + 7;
        sum += REGION[i];
    }
    for (uint64_t n = 1;; ++n) {
        for (volatile uint32_t d = 0; d < 20000; ++d) {
        }
        uint32_t check = 0;
        for (uint32_t i = 0; i < WORDS; ++i) check += REGION[i];
        puts("tick ");
        put_dec(n);
        puts(check == sum ? " ok\n" : " CORRUPT\n");
    }
}
