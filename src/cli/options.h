// Argument parsing of `sam encode | predict | info` (points, boxes, numbers),
// apart from main.c so that a fuzz target can drive it (tests/fuzz/).
#ifndef SAM_CLI_OPTIONS_H
#define SAM_CLI_OPTIONS_H

#include "io/tensors.h"
#include "sam.h"

// --point may be given at most as many times as a prompt holds points.
#define CLI_MAX_POINTS SAM_MAX_POINTS

typedef struct CliOptions {
    const char *model, *image, *images, *embedding, *out, *mask_input;
    int mask_index;  // -1: not given
    TensorDType dtype;
    float points[2 * CLI_MAX_POINTS];
    int labels[CLI_MAX_POINTS];
    int n_points;
    float box[4];
    int has_box;
    int multimask;  // -1: default as the official notebook
    int threads;    // 0: online cores
} CliOptions;

// Parses argv (without the command name). Strings point into argv. On a bad
// argument returns -1 with a message naming it in err.
int cli_parse_options(int argc, char **argv, CliOptions *o, SamError *err);
// Exactly n comma-separated finite numbers, nothing after them: 0 or -1.
int cli_parse_floats(const char *s, float *out, int n);
// --dtype f32 | f16. 0 or -1.
int cli_parse_dtype(const char *s, TensorDType *dtype);
// --threads N: 1..256. 0 or -1.
int cli_parse_threads(const char *v, int *threads);

#endif
