// build/sam: the command-line front end (this file, everything.c and
// encode_folder.c print; only main returns the exit status).
//   sam convert IN OUT.safetensors [--dtype f32|f16]
//   sam encode --model M --image IMG --out EMB.safetensors [--dtype f32|f16] [--threads N]
//   sam encode --model M --images DIR --out OUT_DIR [--dtype f32|f16] [--threads N]
//   sam predict --model M (--image IMG | --embedding EMB) [--point X,Y,L]...
//               [--box X0,Y0,X1,Y1] [--mask-input LOGITS.npy [--mask-index K]]
//               [--multimask | --single] [--threads N] --out DIR
//   sam info --model M
//   sam everything --model M (--image IMG | --embedding EMB) --out OUT.json [options]
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "image_io.h"
#include "kernels/kernels.h"
#include "options.h"
#include "sam.h"

int cmd_everything(int argc, char **argv);  // everything.c: the automatic mask generator

static const char USAGE[] =
    "usage:\n"
    "  sam convert IN.pth|IN.safetensors OUT.safetensors [--dtype f32|f16]\n"
    "  sam encode --model M --image IMG --out EMB.safetensors [--dtype f32|f16] [--threads N]\n"
    "  sam encode --model M --images DIR --out OUT_DIR [--dtype f32|f16] [--threads N]\n"
    "             (every image of DIR to OUT_DIR/<file name>.safetensors; existing ones skipped)\n"
    "  sam predict --model M (--image IMG | --embedding EMB) [--point X,Y,LABEL]...\n"
    "              [--box X0,Y0,X1,Y1] [--mask-input LOGITS.npy [--mask-index K]]\n"
    "              [--multimask | --single] [--threads N] --out DIR\n"
    "  sam info --model M\n"
    "  sam everything --model M (--image IMG | --embedding EMB) --out OUT.json\n"
    "              [--points-per-side N] [--points-per-batch N] [--pred-iou-thresh F]\n"
    "              [--stability-score-thresh F] [--stability-score-offset F] [--box-nms-thresh F]\n"
    "              [--crop-n-layers N] [--crop-nms-thresh F] [--crop-overlap-ratio F]\n"
    "              [--crop-n-points-downscale-factor N] [--min-mask-region-area N]\n"
    "              [--output-mode binary_mask|uncompressed_rle|coco_rle] [--png-dir DIR]\n"
    "              [--point-grids GRIDS.json (instead of --points-per-side)] [--threads N]\n"
    "--threads N: image encoder threads (default: the number of online cores).\n"
    "Coordinates are pixels of the original image; LABEL 1 is foreground, 0 background.\n"
    "Models: official SAM checkpoints (sam_vit_b_01ec64.pth, ...) or converted .safetensors.\n";

static int fail(const char *fmt, const char *arg) {
    fprintf(stderr, "sam: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    return 1;
}

static int fail_err(const SamError *err) {
    fprintf(stderr, "sam: error: %s\n", err->message);
    return 1;
}

static int parse_options(int argc, char **argv, CliOptions *o) {
    SamError err;
    if (cli_parse_options(argc, argv, o, &err)) return fail("%s", err.message);
    return 0;
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void print_progress(void *user, int done, int total) {
    const double *start = user;
    fprintf(stderr, "\rencoding: %d/%d steps, %.1f s", done, total, now_seconds() - *start);
    if (done == total) fprintf(stderr, "\n");
}

static int cmd_convert(int argc, char **argv) {
    const char *in = NULL, *out = NULL;
    TensorDType dtype = DTYPE_F32;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--dtype") == 0 && i + 1 < argc) {
            if (cli_parse_dtype(argv[++i], &dtype)) return fail("--dtype must be f32 or f16, got '%s'", argv[i]);
        } else if (argv[i][0] == '-') {
            return fail("convert: unknown option '%s'", argv[i]);
        } else if (!in) {
            in = argv[i];
        } else if (!out) {
            out = argv[i];
        } else {
            return fail("convert: unexpected argument '%s'", argv[i]);
        }
    }
    if (!in || !out) return fail("%s", "convert needs IN and OUT.safetensors");
    SamError err;
    uint8_t *data, *converted;
    size_t len, converted_len;
    if (file_read_all(in, &data, &len, &err)) return fail_err(&err);
    int rc = sam_convert(data, len, dtype, &converted, &converted_len, &err);
    free(data);
    if (rc) {
        sam_error_prefix(&err, "%s", in);
        return fail_err(&err);
    }
    rc = file_write_all(out, converted, converted_len, &err);
    free(converted);
    if (rc) return fail_err(&err);
    fprintf(stderr, "wrote %s (%zu MB)\n", out, converted_len >> 20);
    return 0;
}

static int load_model(const char *path, int threads, SamModel **model) {
    SamError err;
    if (!path) return fail("%s", "--model is required");
    if (sam_model_load_file(model, path, &err)) return fail_err(&err);
    sam_model_set_threads(*model, threads);
    return 0;
}

static int encode_image(SamModel *model, const char *path, SamImage **image) {
    SamError err;
    uint8_t *rgb;
    int w, h;
    if (image_load_rgb(path, &rgb, &w, &h, &err)) return fail_err(&err);
    double start = now_seconds();
    int rc = sam_image_encode(model, rgb, w, h, print_progress, &start, image, &err);
    free(rgb);
    if (rc) return fail_err(&err);
    return 0;
}

int cmd_encode_folder(SamModel *model, const char *dir, const char *out_dir, TensorDType dtype);

static int cmd_encode(int argc, char **argv) {
    CliOptions o;
    if (parse_options(argc, argv, &o)) return 1;
    if ((!o.image && !o.images) || (o.image && o.images) || !o.out)
        return fail("%s", "encode needs --model, --out and one of --image or --images");
    SamModel *model;
    if (load_model(o.model, o.threads, &model)) return 1;
    if (o.images) {  // a folder: encode_folder.c
        const int rc = cmd_encode_folder(model, o.images, o.out, o.dtype);
        sam_model_free(model);
        return rc;
    }
    SamImage *image;
    if (encode_image(model, o.image, &image)) {
        sam_model_free(model);
        return 1;
    }
    SamError err;
    uint8_t *bytes;
    size_t len;
    int rc = sam_image_save_embedding(model, image, o.dtype, &bytes, &len, &err);
    if (rc == 0) rc = file_write_all(o.out, bytes, len, &err);
    if (rc == 0) free(bytes);
    sam_image_free(image);
    sam_model_free(model);
    if (rc) return fail_err(&err);
    return 0;
}

// Reads the mask prompt: (L, L), (1, L, L), (1, 1, L, L) or (K, L, L) with --mask-index.
static int load_mask_input(const CliOptions *o, int low_res, float **mask) {
    SamError err;
    uint8_t *data;
    size_t len;
    if (file_read_all(o->mask_input, &data, &len, &err)) return fail_err(&err);
    float *values;
    int ndim;
    int64_t shape[TENSOR_MAX_DIMS];
    int rc = npy_read_f32(data, len, &values, &ndim, shape, &err);
    free(data);
    if (rc) {
        sam_error_prefix(&err, "%s", o->mask_input);
        return fail_err(&err);
    }
    int64_t k = 1;
    for (int i = 0; i < ndim - 2; i++) k *= shape[i];
    if (ndim < 2 || shape[ndim - 1] != low_res || shape[ndim - 2] != low_res) {
        free(values);
        fprintf(stderr, "sam: error: %s: mask input must end in %dx%d low-res logits (as low_res_logits.npy)\n",
                o->mask_input, low_res, low_res);
        return 1;
    }
    int index = o->mask_index < 0 ? 0 : o->mask_index;
    if (k > 1 && o->mask_index < 0) {
        free(values);
        fprintf(stderr, "sam: error: %s holds %lld masks: choose one with --mask-index K "
                        "(the official notebook passes the best-scoring one)\n", o->mask_input, (long long)k);
        return 1;
    }
    if (index >= k) {
        free(values);
        fprintf(stderr, "sam: error: --mask-index %d but %s holds %lld masks\n", index, o->mask_input, (long long)k);
        return 1;
    }
    *mask = malloc(sizeof(float) * (size_t)low_res * low_res);
    if (!*mask) {
        free(values);
        return fail("%s", "out of memory");
    }
    memcpy(*mask, values + (size_t)index * low_res * low_res, sizeof(float) * (size_t)low_res * low_res);
    free(values);
    return 0;
}

// Box of the mask as the automatic mask generator reports it: XYWH where
// (x0, y0) and (x0 + w, y0 + h) are the first and last covered pixels.
static void mask_stats(const uint8_t *m, int w, int h, long *area, int bbox[4]) {
    int x0 = w, y0 = h, x1 = -1, y1 = -1;
    long a = 0;
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            if (!m[(size_t)y * w + x]) continue;
            a++;
            if (x < x0) x0 = x;
            if (x > x1) x1 = x;
            if (y < y0) y0 = y;
            if (y > y1) y1 = y;
        }
    }
    *area = a;
    if (a == 0) {
        bbox[0] = bbox[1] = bbox[2] = bbox[3] = 0;
    } else {
        bbox[0] = x0, bbox[1] = y0, bbox[2] = x1 - x0, bbox[3] = y1 - y0;
    }
}

static int write_outputs(const char *dir, const SamMasks *r) {
    SamError err;
    char path[4096];
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) return fail("cannot create output folder '%s'", dir);
    const size_t hw = (size_t)r->width * r->height;
    uint8_t *png = malloc(hw ? hw : 1);
    if (!png) return fail("%s", "out of memory");
    snprintf(path, sizeof path, "%s/result.json", dir);
    FILE *json = fopen(path, "w");
    if (!json) {
        free(png);
        return fail("cannot create '%s'", path);
    }
    fprintf(json, "{\"image_size\":[%d,%d],\"masks\":[", r->height, r->width);
    for (int k = 0; k < r->count; k++) {
        const uint8_t *m = r->masks + (size_t)k * hw;
        for (size_t i = 0; i < hw; i++) png[i] = m[i] ? 255 : 0;
        snprintf(path, sizeof path, "%s/mask_%d.png", dir, k);
        if (image_write_png_grey(path, png, r->width, r->height, &err)) {
            fclose(json);
            free(png);
            return fail_err(&err);
        }
        long area;
        int bbox[4];
        mask_stats(m, r->width, r->height, &area, bbox);
        fprintf(json, "%s\n  {\"file\":\"mask_%d.png\",\"score\":%.9g,\"stability\":%.9g,\"area\":%ld,"
                      "\"bbox\":[%d,%d,%d,%d]}",
                k ? "," : "", k, r->scores[k], r->stability[k], area, bbox[0], bbox[1], bbox[2], bbox[3]);
    }
    fprintf(json, "\n]}\n");
    free(png);
    if (fclose(json) != 0) return fail("cannot write '%s/result.json'", dir);
    const int64_t shape[3] = {r->count, r->low_res, r->low_res};
    uint8_t *npy;
    size_t npy_len;
    if (npy_write_f32(r->low_res_logits, 3, shape, &npy, &npy_len, &err)) return fail_err(&err);
    snprintf(path, sizeof path, "%s/low_res_logits.npy", dir);
    int rc = file_write_all(path, npy, npy_len, &err);
    free(npy);
    if (rc) return fail_err(&err);
    return 0;
}

static int cmd_predict(int argc, char **argv) {
    CliOptions o;
    if (parse_options(argc, argv, &o)) return 1;
    if (!o.out) return fail("%s", "predict needs --out DIR");
    if (!!o.image == !!o.embedding) return fail("%s", "predict needs exactly one of --image or --embedding");
    if (o.n_points == 0 && !o.has_box && !o.mask_input)
        return fail("%s", "predict needs a prompt: --point, --box or --mask-input");
    SamModel *model;
    if (load_model(o.model, o.threads, &model)) return 1;
    SamError err;
    SamImage *image = NULL;
    float *mask_input = NULL;
    SamMasks result = {0};
    int rc = 1;
    if (o.image) {
        if (encode_image(model, o.image, &image)) goto done;
    } else {
        uint8_t *data;
        size_t len;
        if (file_read_all(o.embedding, &data, &len, &err)) {
            fail_err(&err);
            goto done;
        }
        int bad = sam_image_load_embedding(model, data, len, &image, &err);
        free(data);
        if (bad) {
            sam_error_prefix(&err, "%s", o.embedding);
            fail_err(&err);
            goto done;
        }
    }
    if (o.mask_input && load_mask_input(&o, 4 * sam_model_config(model)->grid, &mask_input)) goto done;
    int h, w;
    sam_image_size(image, &h, &w);
    for (int i = 0; i < o.n_points; i++) {
        float x = o.points[2 * i], y = o.points[2 * i + 1];
        if (x < 0 || y < 0 || x >= w || y >= h)
            fprintf(stderr, "sam: warning: point %d (%g, %g) is outside the %dx%d image\n", i, x, y, w, h);
    }
    SamPrompt prompt = {
        .points = o.points,
        .labels = o.labels,
        .n_points = o.n_points,
        .box = o.has_box ? o.box : NULL,
        .mask_input = mask_input,
        // The official notebook: 3 masks for one ambiguous point, 1 otherwise.
        .multimask = o.multimask >= 0 ? o.multimask : (o.n_points == 1 && !o.has_box && !o.mask_input),
    };
    double start = now_seconds();
    if (sam_predict(model, image, &prompt, &result, &err)) {
        fail_err(&err);
        goto done;
    }
    double elapsed = now_seconds() - start;
    if (write_outputs(o.out, &result)) goto done;
    fprintf(stderr, "%d mask(s) in %.1f ms, written to %s\n", result.count, elapsed * 1e3, o.out);
    rc = 0;
done:
    sam_masks_free(&result);
    free(mask_input);
    sam_image_free(image);
    sam_model_free(model);
    return rc;
}

static int cmd_info(int argc, char **argv) {
    CliOptions o;
    if (parse_options(argc, argv, &o)) return 1;
    SamModel *model;
    if (load_model(o.model, o.threads, &model)) return 1;
    const SamConfig *c = sam_model_config(model);
    printf("{\"model_type\":\"%s\",\"model_id\":\"%s\",\"img_size\":%d,\"patch_size\":%d,"
           "\"embed_dim\":%d,\"depth\":%d,\"num_heads\":%d,\"head_dim\":%d,\"mlp_dim\":%d,"
           "\"window_size\":%d,\"global_attn_indexes\":[",
           sam_model_type(model), sam_model_id(model), c->img_size, c->patch_size, c->embed_dim,
           c->depth, c->num_heads, c->head_dim, c->mlp_dim, c->window_size);
    int first = 1;
    for (int i = 0; i < c->depth; i++) {
        if (!c->is_global[i]) continue;
        printf("%s%d", first ? "" : ",", i);
        first = 0;
    }
    printf("]");
    if (c->encoder_kind == SAM_ENCODER_TINYVIT) {  // MobileSAM: per-stage config
        const int *d = c->tv_dims, *n = c->tv_depths, *h = c->tv_heads, *w = c->tv_windows;
        printf(",\"encoder\":\"tinyvit\",\"embed_dims\":[%d,%d,%d,%d],\"depths\":[%d,%d,%d,%d],"
               "\"stage_heads\":[%d,%d,%d],\"window_sizes\":[%d,%d,%d]",
               d[0], d[1], d[2], d[3], n[0], n[1], n[2], n[3], h[1], h[2], h[3], w[1], w[2], w[3]);
    }
    printf(",\"out_chans\":%d,\"prompt_dim\":%d,\"decoder_depth\":%d,\"decoder_heads\":%d,"
           "\"decoder_mlp_dim\":%d,\"num_mask_tokens\":%d,\"gemm\":\"%s\"}\n",
           c->out_chans, c->prompt_dim, c->decoder_depth, c->decoder_heads, c->decoder_mlp_dim,
           c->num_mask_tokens, gemm_variant_name());
    sam_model_free(model);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(USAGE, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "convert") == 0) return cmd_convert(argc - 2, argv + 2);
    if (strcmp(cmd, "encode") == 0) return cmd_encode(argc - 2, argv + 2);
    if (strcmp(cmd, "predict") == 0) return cmd_predict(argc - 2, argv + 2);
    if (strcmp(cmd, "info") == 0) return cmd_info(argc - 2, argv + 2);
    if (strcmp(cmd, "everything") == 0) return cmd_everything(argc - 2, argv + 2);  // everything.c
    fprintf(stderr, "sam: unknown command '%s'\n%s", cmd, USAGE);
    return 2;
}
