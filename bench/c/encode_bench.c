// encode_bench: times the image encoder of the native library in-process
// (model load and process start excluded), through the public API of src/sam.h
// only: load a model, then sam_image_encode the same RGB image W + N times and
// print one JSON object on stdout. The time covers what setImage does:
// resize (Pillow bilinear), normalise, pad, encoder, and the decoder's
// per-image state.
//
//   build/bench/encode_bench --model M --rgb IMAGE.rgb --size WxH [--n 5] [--warmup 1]
//       [--threads 1] [--out-embedding E.safetensors]
//
// IMAGE.rgb holds W * H * 3 bytes (RGB, row-major). JSON: {"runtime", "n",
// "warmup", "median_ms", "min_ms", "mean_ms", "load_ms", "type"}.
// --out-embedding writes the first embedding (float32) for checks.
// --threads: encoder threads (sam_model_set_threads); 1 by default, as the
// one-thread peers of bench/*.mjs; 0 is the library's default (online cores).
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_common.h"
#include "sam.h"


static void usage(void) {
    fputs("usage: encode_bench --model M --rgb IMAGE.rgb --size WxH [--n 5] [--warmup 1]\n"
          "           [--threads 1] [--out-embedding E.safetensors]\n",
          stderr);
    exit(2);
}

int main(int argc, char **argv) {
    bench_program = "encode_bench";
    const char *model_path = NULL, *rgb_path = NULL, *out_emb = NULL;
    int width = 0, height = 0, n = 5, warmup = 1, threads = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--model")) model_path = v;
        else if (!strcmp(a, "--rgb")) rgb_path = v;
        else if (!strcmp(a, "--out-embedding")) out_emb = v;
        else if (!strcmp(a, "--n")) n = atoi(v);
        else if (!strcmp(a, "--warmup")) warmup = atoi(v);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--size")) {
            if (sscanf(v, "%dx%d", &width, &height) != 2) die("--size wants WxH, got %s", v);
        } else usage();
    }
    if (argc % 2 == 0 || !model_path || !rgb_path || width <= 0 || height <= 0 || n < 1 || warmup < 0)
        usage();

    size_t len;
    uint8_t *rgb = read_file(rgb_path, &len);
    if (len != (size_t)width * height * 3) die("%s does not hold W * H * 3 bytes", rgb_path);
    SamError err;
    SamModel *model = NULL;
    double t0 = now_ms();
    if (sam_model_load_file(&model, model_path, &err)) die("%s", err.message);
    if (sam_model_set_threads(model, threads)) die("%s", "--threads: at most 256");
    double load_ms = now_ms() - t0;

    double *times = malloc(sizeof(double) * (size_t)n);
    if (!times) die("%s", "out of memory");
    for (int i = 0; i < warmup + n; i++) {
        SamImage *image = NULL;
        double t = now_ms();
        if (sam_image_encode(model, rgb, width, height, NULL, NULL, &image, &err)) die("%s", err.message);
        double dt = now_ms() - t;
        if (i >= warmup) times[i - warmup] = dt;
        if (i == 0 && out_emb) {
            uint8_t *bytes;
            size_t bytes_len;
            if (sam_image_save_embedding(model, image, DTYPE_F32, &bytes, &bytes_len, &err))
                die("%s", err.message);
            FILE *f = fopen(out_emb, "wb");
            if (!f || fwrite(bytes, 1, bytes_len, f) != bytes_len || fclose(f) != 0)
                die("cannot write %s", out_emb);
            free(bytes);
        }
        sam_image_free(image);
    }
    double sum = 0;
    for (int i = 0; i < n; i++) sum += times[i];
    qsort(times, (size_t)n, sizeof *times, cmp_double);
    const double median = n % 2 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]);
    printf("{\"runtime\":\"ours-native\",\"n\":%d,\"warmup\":%d,\"median_ms\":%.3f,\"min_ms\":%.3f,"
           "\"mean_ms\":%.3f,\"load_ms\":%.3f,\"type\":\"%s\",\"threads\":%d}\n",
           n, warmup, median, times[0], sum / n, load_ms, sam_model_type(model), sam_model_threads(model));
    free(times);
    free(rgb);
    sam_model_free(model);
    return 0;
}
