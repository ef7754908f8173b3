/* For snapshot round trips: fills 64 KiB with a pattern, then forever re-checks it, records each
 * tick in a history page and checks the last ten entries, and prints "tick N ok". A restored guest
 * must go on from the next N with its memory intact, including what changed since a Full snapshot
 * (which only a Diff snapshot carries). */
#include "guest.h"

#define REGION ((volatile uint32_t*)0x400000)
#define WORDS (64 * 1024 / 4)
#define HISTORY ((volatile uint64_t*)0x500000) /* 512 entries: one page */
#define STAMP(n) ((n) * 0x9e3779b97f4a7c15ull)

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
        HISTORY[n % 512] = STAMP(n);
        int history_ok = 1;
        for (uint64_t k = n > 10 ? n - 10 : 1; k <= n; ++k)
            if (HISTORY[k % 512] != STAMP(k)) history_ok = 0;
        puts("tick ");
        put_dec(n);
        puts(check == sum && history_ok ? " ok\n" : " CORRUPT\n");
    }
}
