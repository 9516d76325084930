// decode_bench: times the prompt decoder of the native library in-process
// (model load and process start excluded), through the public API of src/sam.h
// only: load a model, load an embedding file, then sam_predict the same point
// prompt W + N times and print one JSON object on stdout.
//
//   build/bench/decode_bench --model M.pth --embedding E.safetensors --point X,Y[,LABEL]
//       [--n 30] [--warmup 3] [--single] [--out-masks masks.npy] [--out-logits low_res.npy]
//
// JSON: {"runtime", "n", "warmup", "median_ms", "min_ms", "mean_ms", "load_ms",
//        "count", "width", "height", "low_res", "scores": [...], "stages": {...}}
// --out-masks writes the masks of the first prediction as uint8 .npy (count, h, w),
// --out-logits the low-res logits as float32 .npy (count, 4G, 4G), for checks.
// "stages": the median per stage of SamMasks.stage_ms (prompt encoder,
// transformer, upscaling with the heads, post-processing).
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_common.h"
#include "sam.h"


// Writes a C-order .npy (version 1.0) with the given dtype descr and shape.
static void write_npy(const char *path, const char *descr, const int *shape, int ndim,
                      const void *data, size_t bytes) {
    char header[256];
    int n = snprintf(header, sizeof header, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int i = 0; i < ndim; i++) n += snprintf(header + n, sizeof header - n, "%d, ", shape[i]);
    n += snprintf(header + n, sizeof header - n, "), }");
    int total = 10 + n + 1;
    int pad = (64 - total % 64) % 64;
    FILE *f = fopen(path, "wb");
    if (!f) die("cannot write %s", path);
    unsigned short hlen = (unsigned short)(n + pad + 1);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fputc(hlen & 0xff, f);
    fputc(hlen >> 8, f);
    fwrite(header, 1, (size_t)n, f);
    for (int i = 0; i < pad; i++) fputc(' ', f);
    fputc('\n', f);
    if (fwrite(data, 1, bytes, f) != bytes) die("cannot write %s", path);
    if (fclose(f) != 0) die("cannot close %s", path);
}

static void usage(void) {
    fprintf(stderr,
            "usage: decode_bench --model M --embedding E --point X,Y[,LABEL] [--n 30] [--warmup 3]\n"
            "                    [--single] [--out-masks F.npy] [--out-logits F.npy]\n");
    exit(2);
}

int main(int argc, char **argv) {
    bench_program = "decode_bench";
    const char *model_path = NULL, *emb_path = NULL, *out_masks = NULL, *out_logits = NULL;
    float xy[2] = {0, 0};
    int label = 1, have_point = 0, n = 30, warmup = 3, multimask = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--single")) { multimask = 0; continue; }
        if (!v) usage();
        if (!strcmp(a, "--model")) model_path = v;
        else if (!strcmp(a, "--embedding")) emb_path = v;
        else if (!strcmp(a, "--out-masks")) out_masks = v;
        else if (!strcmp(a, "--out-logits")) out_logits = v;
        else if (!strcmp(a, "--n")) n = atoi(v);
        else if (!strcmp(a, "--warmup")) warmup = atoi(v);
        else if (!strcmp(a, "--point")) {
            int got = sscanf(v, "%f,%f,%d", &xy[0], &xy[1], &label);
            if (got < 2) die("--point wants X,Y[,LABEL], got %s", v);
            have_point = 1;
        } else usage();
        i++;
    }
    if (!model_path || !emb_path || !have_point || n < 1 || warmup < 0) usage();

    SamError err;
    SamModel *model = NULL;
    double t0 = now_ms();
    if (sam_model_load_file(&model, model_path, &err)) die("%s", err.message);
    double load_ms = now_ms() - t0;
    size_t emb_len;
    uint8_t *emb = read_file(emb_path, &emb_len);
    SamImage *image = NULL;
    if (sam_image_load_embedding(model, emb, emb_len, &image, &err)) die("%s", err.message);
    free(emb);

    SamPrompt prompt = {.points = xy, .labels = &label, .n_points = 1, .multimask = multimask};
    SamMasks first;
    if (sam_predict(model, image, &prompt, &first, &err)) die("%s", err.message);
    if (out_masks) {
        int shape[3] = {first.count, first.height, first.width};
        write_npy(out_masks, "|u1", shape, 3, first.masks,
                  (size_t)first.count * first.height * first.width);
    }
    if (out_logits) {
        int shape[3] = {first.count, first.low_res, first.low_res};
        write_npy(out_logits, "<f4", shape, 3, first.low_res_logits,
                  sizeof(float) * first.count * first.low_res * first.low_res);
    }

    double *times = malloc(sizeof(double) * (size_t)n * (1 + SAM_STAGE_COUNT));
    if (!times) die("%s", "out of memory");
    double *stages = times + n;  // (SAM_STAGE_COUNT, n)
    for (int i = 0; i < warmup + n; i++) {
        SamMasks m;
        double t = now_ms();
        if (sam_predict(model, image, &prompt, &m, &err)) die("%s", err.message);
        double dt = now_ms() - t;
        if (i >= warmup) {
            times[i - warmup] = dt;
            for (int s = 0; s < SAM_STAGE_COUNT; s++) stages[(size_t)s * n + i - warmup] = m.stage_ms[s];
        }
        sam_masks_free(&m);
    }
    double sum = 0;
    for (int i = 0; i < n; i++) sum += times[i];
    qsort(times, (size_t)n, sizeof(double), cmp_double);
    double median = n % 2 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]);

    printf("{\"runtime\": \"native\", \"model_type\": \"%s\", \"n\": %d, \"warmup\": %d, "
           "\"median_ms\": %.3f, \"min_ms\": %.3f, \"mean_ms\": %.3f, \"load_ms\": %.1f, "
           "\"count\": %d, \"width\": %d, \"height\": %d, \"low_res\": %d, \"scores\": [",
           sam_model_type(model), n, warmup, median, times[0], sum / n, load_ms, first.count,
           first.width, first.height, first.low_res);
    for (int k = 0; k < first.count; k++) printf("%s%.9g", k ? ", " : "", first.scores[k]);
    static const char *stage_names[SAM_STAGE_COUNT] = {"prompt", "transformer", "upscale",
                                                        "postprocess"};
    printf("], \"stages\": {");
    for (int s = 0; s < SAM_STAGE_COUNT; s++) {
        double *v = stages + (size_t)s * n;
        qsort(v, (size_t)n, sizeof(double), cmp_double);
        printf("%s\"%s\": %.3f", s ? ", " : "", stage_names[s], v[n / 2]);
    }
    printf("}}\n");

    free(times);
    sam_masks_free(&first);
    sam_image_free(image);
    sam_model_free(model);
    return 0;
}
