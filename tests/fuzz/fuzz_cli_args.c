// The CLI's option parsing (points, boxes, labels, numbers): the input is
// split at NUL bytes into arguments. Properties: what is accepted is finite,
// labels are 0 or 1, and the point count stays within the prompt limit.
#include <math.h>
#include <string.h>

#include "cli/options.h"
#include "fuzz.h"

#define MAX_ARGS 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char *argv[MAX_ARGS];
    int argc = 0;
    for (size_t i = 0; i <= size && argc < MAX_ARGS;) {
        argv[argc++] = text + i;
        i += strlen(text + i) + 1;
    }
    CliOptions o;
    SamError err = {{0}};
    if (cli_parse_options(argc, argv, &o, &err) == 0) {
        FUZZ_ASSERT(o.n_points >= 0 && o.n_points <= SAM_MAX_POINTS);
        for (int i = 0; i < o.n_points; i++) {
            FUZZ_ASSERT(isfinite(o.points[2 * i]) && isfinite(o.points[2 * i + 1]));
            FUZZ_ASSERT(o.labels[i] == 0 || o.labels[i] == 1);
        }
        for (int i = 0; i < 4 && o.has_box; i++) FUZZ_ASSERT(isfinite(o.box[i]));
        FUZZ_ASSERT(o.mask_index >= -1 && o.mask_index <= 64);
        FUZZ_ASSERT(o.threads >= 0 && o.threads <= 256);
    } else {
        FUZZ_ASSERT_MESSAGE(err);
    }
    free(text);
    return 0;
}
