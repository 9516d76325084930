// `sam encode --images DIR --out DIR`: embeds every image of a folder, with a
// progress bar (images done, images per minute, ETA) on stderr. An image
// whose embedding already exists is skipped, so an interrupted run resumes:
// embeddings are written to a temporary name and renamed into place, so a
// file under the final name is always complete. An image that cannot be read
// or encoded is reported and the others go on; the exit status is then 1.
//
// Output names: OUT/<image file name>.safetensors (photo.jpg ->
// photo.jpg.safetensors), so images that differ only in their extension do
// not collide.
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/clock.h"
#include "image_io.h"
#include "sam.h"

int cmd_encode_folder(SamModel *model, const char *dir, const char *out_dir, TensorDType dtype);

// The extensions stb_image reads (case-insensitive).
static int is_image_name(const char *name) {
    static const char *exts[] = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tga",
                                 ".psd", ".hdr", ".pic", ".pnm", ".ppm", ".pgm"};
    const char *dot = strrchr(name, '.');
    if (!dot || name[0] == '.') return 0;
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
        const char *e = exts[i];
        size_t k = 0;
        while (e[k] && dot[k] && (dot[k] | 0x20) == e[k]) k++;
        if (!e[k] && !dot[k]) return 1;
    }
    return 0;
}

static int compare_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

// Sorted names of the image files in dir; NULL on error (errno set).
static char **list_images(const char *dir, int *count) {
    DIR *d = opendir(dir);
    if (!d) return NULL;
    char **names = NULL;
    int n = 0, cap = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (!is_image_name(e->d_name)) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **grown = realloc(names, sizeof *names * (size_t)cap);
            if (!grown) break;
            names = grown;
        }
        if (!(names[n] = strdup(e->d_name))) break;
        n++;
    }
    closedir(d);
    if (n) qsort(names, (size_t)n, sizeof *names, compare_names);
    *count = n;
    return names ? names : calloc(1, sizeof *names);
}

static void format_duration(char *buf, size_t size, double seconds) {
    const long s = (long)(seconds + 0.5);
    snprintf(buf, size, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
}

static void print_bar(int done, int total, int encoded, double elapsed) {
    enum { WIDTH = 30 };
    char bar[WIDTH + 1];
    const int filled = total ? WIDTH * done / total : WIDTH;
    for (int i = 0; i < WIDTH; i++) bar[i] = i < filled ? '#' : '.';
    bar[WIDTH] = '\0';
    const double per_minute = elapsed > 0 ? 60.0 * encoded / elapsed : 0.0;
    char eta[32] = "?";
    if (encoded > 0) format_duration(eta, sizeof eta, (total - done) * elapsed / encoded);
    fprintf(stderr, "\r[%s] %d/%d images, %.1f images/min, ETA %s   ", bar, done, total,
            per_minute, eta);
}

static int encode_one(SamModel *model, const char *in, const char *out, TensorDType dtype) {
    SamError err;
    uint8_t *rgb;
    int w, h;
    if (image_load_rgb(in, &rgb, &w, &h, &err)) goto failed;
    SamImage *image;
    const int rc = sam_image_encode(model, rgb, w, h, NULL, NULL, &image, &err);
    free(rgb);
    if (rc) goto failed;
    uint8_t *bytes;
    size_t len;
    char tmp[4096 + 16];
    snprintf(tmp, sizeof tmp, "%s.partial", out);
    int wrc = sam_image_save_embedding(model, image, dtype, &bytes, &len, &err);
    sam_image_free(image);
    if (wrc) goto failed;
    wrc = file_write_all(tmp, bytes, len, &err);
    free(bytes);
    if (wrc) goto failed;
    if (rename(tmp, out) != 0) {
        remove(tmp);
        fprintf(stderr, "\nsam: error: %s: cannot rename the embedding into place\n", out);
        return -1;
    }
    return 0;
failed:
    fprintf(stderr, "\nsam: error: %s: %s\n", in, err.message);
    return -1;
}

int cmd_encode_folder(SamModel *model, const char *dir, const char *out_dir, TensorDType dtype) {
    int count = 0;
    char **names = list_images(dir, &count);
    if (!names) {
        fprintf(stderr, "sam: cannot read the folder %s\n", dir);
        return 1;
    }
    struct stat st;
    if (stat(out_dir, &st) != 0 && mkdir(out_dir, 0777) != 0) {
        fprintf(stderr, "sam: cannot create the output folder %s\n", out_dir);
        return 1;
    }
    int done = 0, encoded = 0, skipped = 0, failed = 0;
    const double start = sam_clock_ms();
    if (count == 0) fprintf(stderr, "sam: no image files in %s\n", dir);
    for (int i = 0; i < count; i++) {
        char in[4096], out[4096];
        const int in_len = snprintf(in, sizeof in, "%s/%s", dir, names[i]);
        const int out_len = snprintf(out, sizeof out, "%s/%s.safetensors", out_dir, names[i]);
        if (in_len < 0 || out_len < 0 || (size_t)in_len >= sizeof in || (size_t)out_len >= sizeof out) {
            fprintf(stderr, "\nsam: error: %s/%s: path too long\n", dir, names[i]);
            failed++;
        } else if (stat(out, &st) == 0 && st.st_size > 0) {
            skipped++;
        } else if (encode_one(model, in, out, dtype) == 0) {
            encoded++;
        } else {
            failed++;
        }
        done++;
        print_bar(done, count, encoded, (sam_clock_ms() - start) / 1000.0);
        free(names[i]);
    }
    free(names);
    fprintf(stderr, "\n%d encoded, %d already there (skipped), %d failed, in %.1f s\n", encoded,
            skipped, failed, (sam_clock_ms() - start) / 1000.0);
    return failed ? 1 : 0;
}
