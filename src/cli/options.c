#include "options.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

// NaN and inf are refused here so that the message names the argument.
int cli_parse_floats(const char *s, float *out, int n) {
    const char *p = s;
    for (int i = 0; i < n; i++) {
        char *end;
        errno = 0;
        const double v = strtod(p, &end);
        // Finite as a double but not as a float (1e39) would become inf.
        if (end == p || errno == ERANGE || !isfinite(v) || fabs(v) > 3.0e38) return -1;
        out[i] = (float)v;
        p = end;
        if (i < n - 1) {
            if (*p != ',') return -1;
            p++;
        }
    }
    return *p == '\0' ? 0 : -1;
}

int cli_parse_threads(const char *v, int *threads) {
    char *end;
    errno = 0;
    const long n = strtol(v, &end, 10);
    if (end == v || *end || errno || n < 1 || n > 256) return -1;
    *threads = (int)n;
    return 0;
}

int cli_parse_dtype(const char *s, TensorDType *dtype) {
    if (strcmp(s, "f32") == 0) *dtype = DTYPE_F32;
    else if (strcmp(s, "f16") == 0) *dtype = DTYPE_F16;
    else return -1;
    return 0;
}

int cli_parse_options(int argc, char **argv, CliOptions *o, SamError *err) {
    memset(o, 0, sizeof *o);
    o->multimask = -1;
    o->mask_index = -1;
    o->dtype = DTYPE_F32;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--multimask") == 0) { o->multimask = 1; continue; }
        if (strcmp(a, "--single") == 0) { o->multimask = 0; continue; }
        if (a[0] != '-' || a[1] != '-') return sam_error(err, "unexpected argument '%s'", a);
        if (!v) return sam_error(err, "option '%s' needs a value", a);
        i++;
        if (strcmp(a, "--model") == 0) o->model = v;
        else if (strcmp(a, "--image") == 0) o->image = v;
        else if (strcmp(a, "--images") == 0) o->images = v;
        else if (strcmp(a, "--embedding") == 0) o->embedding = v;
        else if (strcmp(a, "--out") == 0) o->out = v;
        else if (strcmp(a, "--mask-input") == 0) o->mask_input = v;
        else if (strcmp(a, "--mask-index") == 0) {
            char *end;
            errno = 0;
            const long k = strtol(v, &end, 10);
            if (end == v || *end || errno || k < 0 || k > 64)
                return sam_error(err, "--mask-index must be an integer from 0 to 64, got '%s'", v);
            o->mask_index = (int)k;
        } else if (strcmp(a, "--threads") == 0) {
            if (cli_parse_threads(v, &o->threads))
                return sam_error(err, "--threads must be an integer from 1 to 256, got '%s'", v);
        } else if (strcmp(a, "--dtype") == 0) {
            if (cli_parse_dtype(v, &o->dtype)) return sam_error(err, "--dtype must be f32 or f16, got '%s'", v);
        } else if (strcmp(a, "--point") == 0) {
            if (o->n_points == CLI_MAX_POINTS)
                return sam_error(err, "at most %d --point prompts are supported", CLI_MAX_POINTS);
            float xyl[3];
            if (cli_parse_floats(v, xyl, 3))
                return sam_error(err, "--point takes X,Y,LABEL with finite numbers, got '%s'", v);
            if (xyl[2] != 0.0f && xyl[2] != 1.0f)
                return sam_error(err, "--point label must be 1 (foreground) or 0 (background), got '%s'", v);
            o->points[2 * o->n_points] = xyl[0];
            o->points[2 * o->n_points + 1] = xyl[1];
            o->labels[o->n_points++] = (int)xyl[2];
        } else if (strcmp(a, "--box") == 0) {
            if (cli_parse_floats(v, o->box, 4))
                return sam_error(err, "--box takes X0,Y0,X1,Y1 with finite numbers, got '%s'", v);
            o->has_box = 1;
        } else {
            return sam_error(err, "unknown option '%s'", a);
        }
    }
    return 0;
}
