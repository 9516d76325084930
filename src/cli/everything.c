// `sam everything`: the automatic mask generator (src/amg) from the command
// line, writing the official generator's records as JSON.
//   sam everything --model M (--image IMG | --embedding EMB) --out OUT.json
//       [--points-per-side N] [--points-per-batch N] [--pred-iou-thresh F]
//       [--stability-score-thresh F] [--stability-score-offset F]
//       [--box-nms-thresh F] [--crop-n-layers N] [--crop-nms-thresh F]
//       [--crop-overlap-ratio F] [--crop-n-points-downscale-factor N]
//       [--min-mask-region-area N] [--output-mode binary_mask|uncompressed_rle|coco_rle]
//       [--png-dir DIR] [--point-grids GRIDS.json (instead of --points-per-side)] [--threads N]
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "amg/amg.h"
#include "common/clock.h"
#include "image_io.h"
#include "options.h"
#include "sam.h"

int cmd_everything(int argc, char **argv);

static int everything_fail(const char *fmt, const char *arg) {
    fprintf(stderr, "sam: error: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    return 1;
}

static int parse_int_arg(const char *name, const char *v, long lo, long hi, int *out) {
    char *end;
    errno = 0;
    const long x = strtol(v, &end, 10);
    if (end == v || *end || errno == ERANGE || x < lo || x > hi) {
        fprintf(stderr, "sam: error: %s takes an integer in %ld..%ld, got '%s'\n", name, lo, hi, v);
        return -1;
    }
    *out = (int)x;
    return 0;
}

static int parse_double_arg(const char *name, const char *v, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    const double x = strtod(v, &end);
    if (end == v || *end || errno == ERANGE || !isfinite(x) || x < lo || x > hi) {
        fprintf(stderr, "sam: error: %s takes a number in [%g, %g], got '%s'\n", name, lo, hi, v);
        return -1;
    }
    *out = x;
    return 0;
}

// The official point_grids: a JSON list of grids, one per crop layer, each a list of [x, y]
// in [0, 1]; a single grid ([[x, y], ...]) is accepted for layer 0. Read with a small scanner
// of nested arrays of numbers; grids[l] are malloc'd.
static int read_point_grids(const char *path, AmgOptions *o, double **grids, SamError *err) {
    uint8_t *data;
    size_t len;
    if (file_read_all(path, &data, &len, err)) return -1;
    char *text = malloc(len + 1);
    if (!text) {
        free(data);
        return sam_error(err, "out of memory");
    }
    memcpy(text, data, len);
    text[len] = '\0';
    free(data);
    // point_depth: the bracket depth of a point, 2 for one grid, 3 for a list of grids; fixed
    // by the first number.
    int depth = 0, point_depth = 0, n_grids = 0, in_point = 0, values = 0, rc = 0;
    size_t cap[AMG_MAX_LAYERS + 1] = {0};
    double xy[2] = {0, 0};
    for (const char *c = text; *c && !rc; c++) {
        if (*c == '[') {
            depth++;
            // With a list of grids, each '[' at depth 2 opens a grid.
            if (depth == 2 && !(point_depth == 2)) {
                if (n_grids == AMG_MAX_LAYERS + 1) rc = sam_error(err, "%s: more than %d grids", path, AMG_MAX_LAYERS + 1);
                else n_grids++;
            }
        } else if (*c == ']') {
            if (in_point && depth == point_depth) {
                if (values != 2) rc = sam_error(err, "%s: a point must be [x, y]", path);
                const int g = n_grids - 1;
                if (!rc && (size_t)o->point_grid_sizes[g] == cap[g]) {
                    cap[g] = cap[g] ? 2 * cap[g] : 256;
                    double *grown = realloc(grids[g], sizeof(double) * 2 * cap[g]);
                    if (!grown) rc = sam_error(err, "out of memory");
                    else grids[g] = grown;
                }
                if (!rc) {
                    grids[g][2 * o->point_grid_sizes[g]] = xy[0];
                    grids[g][2 * o->point_grid_sizes[g] + 1] = xy[1];
                    o->point_grid_sizes[g]++;
                }
                in_point = 0;
            }
            depth--;
            if (depth < 0) rc = sam_error(err, "%s: unbalanced ']'", path);
        } else if (*c == '-' || *c == '.' || (*c >= '0' && *c <= '9')) {
            char *end;
            const double v = strtod(c, &end);
            if (end == c || !isfinite(v)) {
                rc = sam_error(err, "%s: bad number near '%.10s'", path, c);
                break;
            }
            if (!point_depth) {
                point_depth = depth;
                if (point_depth != 2 && point_depth != 3) {
                    rc = sam_error(err, "%s: expected [[x, y], ...] or [[[x, y], ...], ...]", path);
                    break;
                }
                if (point_depth == 2) n_grids = 1;  // the '[' at depth 2 was a point, not a grid
            }
            if (depth != point_depth) {
                rc = sam_error(err, "%s: numbers must be inside [x, y] points", path);
                break;
            }
            if (!in_point) in_point = 1, values = 0;
            if (values < 2) xy[values] = v;
            values++;
            c = end - 1;
        } else if (!(*c == ',' || *c == ' ' || *c == '\n' || *c == '\r' || *c == '\t')) {
            rc = sam_error(err, "%s: unexpected character '%c'", path, *c);
        }
    }
    free(text);
    if (!rc && depth != 0) rc = sam_error(err, "%s: unbalanced '['", path);
    if (!rc && (n_grids == 0 || !point_depth)) rc = sam_error(err, "%s: no points", path);
    if (rc) return -1;
    o->n_point_grids = n_grids;
    for (int g = 0; g < n_grids; g++) o->point_grids[g] = grids[g];
    o->points_per_side = 0;
    return 0;
}

enum { MODE_BINARY, MODE_UNCOMPRESSED, MODE_COCO };

// A float32 value as JSON: enough digits to read back the same float; NaN
// (a 0/0 stability score, kept only when its filter is off) as null.
static void json_float(FILE *f, float v) {
    if (isfinite(v)) fprintf(f, "%.9g", v);
    else fputs("null", f);
}

static int write_json(const char *path, const AmgResult *r, int mode) {
    FILE *f = fopen(path, "w");
    if (!f) return everything_fail("cannot create '%s'", path);
    const int h = r->height, w = r->width;
    uint8_t *mask = mode == MODE_BINARY ? malloc((size_t)h * w) : NULL;
    char *str = NULL;
    size_t str_cap = 0;
    if (mode == MODE_BINARY && !mask) {
        fclose(f);
        return everything_fail("%s", "out of memory");
    }
    fputs("[", f);
    for (int i = 0; i < r->count; i++) {
        const AmgMask *m = &r->masks[i];
        fprintf(f, "%s\n {\"segmentation\":", i ? "," : "");
        if (mode == MODE_BINARY) {
            // The official binary_mask: an (h, w) boolean array.
            amg_rle_decode(mask, m->counts, m->n_counts, h, w);
            fputs("[", f);
            for (int y = 0; y < h; y++) {
                fputs(y ? ",[" : "[", f);
                for (int x = 0; x < w; x++) {
                    if (x) fputc(',', f);
                    fputs(mask[(size_t)y * w + x] ? "true" : "false", f);
                }
                fputs("]", f);
            }
            fputs("]", f);
        } else if (mode == MODE_UNCOMPRESSED) {
            fprintf(f, "{\"size\":[%d,%d],\"counts\":[", h, w);
            for (size_t k = 0; k < m->n_counts; k++) fprintf(f, "%s%u", k ? "," : "", m->counts[k]);
            fputs("]}", f);
        } else {
            const size_t len = amg_rle_to_string(NULL, m->counts, m->n_counts);
            if (len + 1 > str_cap) {
                char *grown = realloc(str, len + 1);
                if (!grown) {
                    free(str);
                    fclose(f);
                    return everything_fail("%s", "out of memory");
                }
                str = grown;
                str_cap = len + 1;
            }
            amg_rle_to_string(str, m->counts, m->n_counts);
            // Characters 48..111: only the backslash (92) needs escaping in JSON.
            fprintf(f, "{\"size\":[%d,%d],\"counts\":\"", h, w);
            for (const char *c = str; *c; c++) {
                if (*c == '\\') fputc('\\', f);
                fputc(*c, f);
            }
            fputs("\"}", f);
        }
        // box_xyxy_to_xywh: w = x1 - x0 with x1 the last covered column.
        fprintf(f, ",\"area\":%lld,\"bbox\":[%d,%d,%d,%d],\"predicted_iou\":", (long long)m->area, m->box[0],
                m->box[1], m->box[2] - m->box[0], m->box[3] - m->box[1]);
        json_float(f, m->predicted_iou);
        fprintf(f, ",\"point_coords\":[[%.17g,%.17g]],\"stability_score\":", m->point[0], m->point[1]);
        json_float(f, m->stability_score);
        fprintf(f, ",\"crop_box\":[%d,%d,%d,%d]}", m->crop_box[0], m->crop_box[1],
                m->crop_box[2] - m->crop_box[0], m->crop_box[3] - m->crop_box[1]);
    }
    fputs("\n]\n", f);
    free(mask);
    free(str);
    if (fclose(f) != 0) return everything_fail("cannot write '%s'", path);
    return 0;
}

static int write_pngs(const char *dir, const AmgResult *r) {
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) return everything_fail("cannot create folder '%s'", dir);
    const size_t hw = (size_t)r->height * r->width;
    uint8_t *mask = malloc(hw ? hw : 1);
    if (!mask) return everything_fail("%s", "out of memory");
    char path[4096];
    SamError err;
    for (int i = 0; i < r->count; i++) {
        amg_rle_decode(mask, r->masks[i].counts, r->masks[i].n_counts, r->height, r->width);
        for (size_t k = 0; k < hw; k++) mask[k] = mask[k] ? 255 : 0;
        snprintf(path, sizeof path, "%s/mask_%d.png", dir, i);
        if (image_write_png_grey(path, mask, r->width, r->height, &err)) {
            free(mask);
            fprintf(stderr, "sam: error: %s\n", err.message);
            return 1;
        }
    }
    free(mask);
    return 0;
}

static int report_batch(void *user, int done, int total, const AmgMask *masks, int n) {
    const double *start = user;
    fprintf(stderr, "\rdecoding: %d/%d points, %.1f s", done, total, (sam_clock_ms() - *start) / 1e3);
    if (done == total) fputc('\n', stderr);
    return 0;
}

int cmd_everything(int argc, char **argv) {
    const char *model_path = NULL, *image_path = NULL, *emb_path = NULL, *out = NULL, *png_dir = NULL;
    const char *grids_path = NULL;
    int side_given = 0, threads = 0;
    int mode = MODE_BINARY;
    AmgOptions o;
    amg_options_default(&o);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || a[1] != '-') return everything_fail("everything: unexpected argument '%s'", a);
        if (i + 1 >= argc) return everything_fail("option '%s' needs a value", a);
        const char *v = argv[++i];
        int bad = 0;
        if (strcmp(a, "--model") == 0) model_path = v;
        else if (strcmp(a, "--image") == 0) image_path = v;
        else if (strcmp(a, "--embedding") == 0) emb_path = v;
        else if (strcmp(a, "--out") == 0) out = v;
        else if (strcmp(a, "--png-dir") == 0) png_dir = v;
        else if (strcmp(a, "--threads") == 0) {
            if (cli_parse_threads(v, &threads))
                return everything_fail("--threads must be an integer from 1 to 256, got '%s'", v);
        }
        else if (strcmp(a, "--points-per-side") == 0) {
            bad = parse_int_arg(a, v, 1, 1024, &o.points_per_side);
            side_given = 1;
        } else if (strcmp(a, "--point-grids") == 0) grids_path = v;
        else if (strcmp(a, "--points-per-batch") == 0) bad = parse_int_arg(a, v, 1, INT_MAX, &o.points_per_batch);
        else if (strcmp(a, "--pred-iou-thresh") == 0) bad = parse_double_arg(a, v, -1e30, 1e30, &o.pred_iou_thresh);
        else if (strcmp(a, "--stability-score-thresh") == 0)
            bad = parse_double_arg(a, v, -1e30, 1e30, &o.stability_score_thresh);
        else if (strcmp(a, "--stability-score-offset") == 0)
            bad = parse_double_arg(a, v, -1e30, 1e30, &o.stability_score_offset);
        else if (strcmp(a, "--box-nms-thresh") == 0) bad = parse_double_arg(a, v, 0, 1, &o.box_nms_thresh);
        else if (strcmp(a, "--crop-nms-thresh") == 0) bad = parse_double_arg(a, v, 0, 1, &o.crop_nms_thresh);
        else if (strcmp(a, "--crop-n-layers") == 0) bad = parse_int_arg(a, v, 0, AMG_MAX_LAYERS, &o.crop_n_layers);
        else if (strcmp(a, "--crop-overlap-ratio") == 0) bad = parse_double_arg(a, v, 0, 1, &o.crop_overlap_ratio);
        else if (strcmp(a, "--crop-n-points-downscale-factor") == 0)
            bad = parse_int_arg(a, v, 1, 1024, &o.crop_n_points_downscale_factor);
        else if (strcmp(a, "--min-mask-region-area") == 0)
            bad = parse_int_arg(a, v, 0, INT_MAX, &o.min_mask_region_area);
        else if (strcmp(a, "--output-mode") == 0) {
            if (strcmp(v, "binary_mask") == 0) mode = MODE_BINARY;
            else if (strcmp(v, "uncompressed_rle") == 0) mode = MODE_UNCOMPRESSED;
            else if (strcmp(v, "coco_rle") == 0) mode = MODE_COCO;
            else return everything_fail("--output-mode must be binary_mask, uncompressed_rle or coco_rle, got '%s'", v);
        } else return everything_fail("everything: unknown option '%s'", a);
        if (bad) return 1;
    }
    if (!model_path) return everything_fail("%s", "everything needs --model");
    if (!out) return everything_fail("%s", "everything needs --out OUT.json");
    if (!!image_path == !!emb_path) return everything_fail("%s", "everything needs exactly one of --image or --embedding");
    if (emb_path && o.crop_n_layers > 0)
        return everything_fail("%s", "--crop-n-layers needs --image: each crop is encoded separately, "
                                     "an embedding covers only the whole image");
    SamError err;
    if (grids_path && side_given) return everything_fail("%s", "give --points-per-side or --point-grids, not both");
    double *grids[AMG_MAX_LAYERS + 1] = {0};
    if (grids_path && read_point_grids(grids_path, &o, grids, &err)) {
        for (int g = 0; g <= AMG_MAX_LAYERS; g++) free(grids[g]);
        return everything_fail("%s", err.message);
    }
    if (amg_options_check(&o, &err)) {
        for (int g = 0; g <= AMG_MAX_LAYERS; g++) free(grids[g]);
        return everything_fail("%s", err.message);
    }

    SamModel *model = NULL;
    SamImage *image = NULL;
    uint8_t *rgb = NULL;
    AmgResult result = {0};
    int w = 0, h = 0, rc = 1;
    if (sam_model_load_file(&model, model_path, &err)) {
        everything_fail("%s", err.message);
        goto done;
    }
    sam_model_set_threads(model, threads);
    if (image_path) {
        if (image_load_rgb(image_path, &rgb, &w, &h, &err)) {
            everything_fail("%s", err.message);
            goto done;
        }
    } else {
        uint8_t *data;
        size_t len;
        if (file_read_all(emb_path, &data, &len, &err)) {
            everything_fail("%s", err.message);
            goto done;
        }
        const int bad = sam_image_load_embedding(model, data, len, &image, &err);
        free(data);
        if (bad) {
            sam_error_prefix(&err, "%s", emb_path);
            everything_fail("%s", err.message);
            goto done;
        }
        sam_image_size(image, &h, &w);
    }
    double start = sam_clock_ms();
    if (amg_generate(model, rgb, w, h, image, &o, report_batch, &start, &result, &err)) {
        fputc('\n', stderr);
        everything_fail("%s", err.message);
        goto done;
    }
    const double total_ms = sam_clock_ms() - start;
    if (write_json(out, &result, mode)) goto done;
    if (png_dir && write_pngs(png_dir, &result)) goto done;
    fprintf(stderr, "%d masks from %d points in %.2f s (encode %.2f s, decode %.2f s = %.1f points/s, "
                    "NMS and regions %.3f s), written to %s\n",
            result.count, result.points, total_ms / 1e3, result.encode_ms / 1e3, result.decode_ms / 1e3,
            result.decode_ms > 0 ? result.points / (result.decode_ms / 1e3) : 0.0, result.filter_ms / 1e3, out);
    rc = 0;
done:
    amg_result_free(&result);
    free(rgb);
    sam_image_free(image);
    sam_model_free(model);
    for (int g = 0; g <= AMG_MAX_LAYERS; g++) free(grids[g]);
    return rc;
}
