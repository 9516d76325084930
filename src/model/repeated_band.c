#include "repeated_band.h"

#include <limits.h>
#include <stdint.h>
#include <string.h>

RepeatedBand repeated_band_none(void) { return (RepeatedBand){0, 0, 1, 0}; }

int repeated_band_skipped(RepeatedBand b) {
    const int n = b.to - b.from - b.period;
    return n > 0 ? n : 0;
}

static RepeatedBand normalized(RepeatedBand b) {
    return repeated_band_skipped(b) > 0 ? b : repeated_band_none();
}

static int gcd(int a, int b) {
    while (b) {
        const int t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static int rows_equal(const float *image, int channels, int h, int w, int y0, int y1) {
    for (int c = 0; c < channels; c++) {
        const float *plane = image + (size_t)c * h * w;
        if (memcmp(plane + (size_t)y0 * w, plane + (size_t)y1 * w, sizeof(float) * (size_t)w))
            return 0;
    }
    return 1;
}

static int same_bits(const float *a, const float *b) {
    uint32_t x, y;
    memcpy(&x, a, sizeof x);
    memcpy(&y, b, sizeof y);
    return x == y;
}

RepeatedBand repeated_band_of_image(const float *image, int channels, int h, int w) {
    if (h < 2 || w < 2 || channels < 1) return repeated_band_none();
    int from = h - 1;
    while (from > 0 && rows_equal(image, channels, h, w, from - 1, h - 1)) from--;
    const RepeatedBand rows = normalized((RepeatedBand){from, h, 1, 0});
    if (repeated_band_skipped(rows)) return rows;
    // Columns: the first of each row's run of values equal to its last one,
    // the rightmost over all rows (a row-major scan).
    from = 0;
    for (size_t i = 0; i < (size_t)channels * h && from < w - 1; i++) {
        const float *row = image + i * w;
        int x = w - 1;
        while (x > from && same_bits(row + x - 1, row + w - 1)) x--;
        from = x;
    }
    return normalized((RepeatedBand){from, w, 1, 1});
}

RepeatedBand repeated_band_after_conv3x3(RepeatedBand b, int size, int stride) {
    if (!repeated_band_skipped(b) || stride < 1) return repeated_band_none();
    const int size_out = (size - 1) / stride + 1;
    // y * stride - 1 >= from and y * stride + 1 <= to - 1.
    const int from = (b.from + stride) / stride;
    int to = (b.to - 2) / stride + 1;
    if (to > size_out) to = size_out;
    // Rows y and y - q read input rows q * stride apart: equal when that is
    // a multiple of the period.
    return normalized((RepeatedBand){from, to, b.period / gcd(b.period, stride), b.columns});
}

RepeatedBand repeated_band_after_windows(RepeatedBand b, int ws) {
    if (!repeated_band_skipped(b) || ws < 1) return repeated_band_none();
    const int from = (b.from + ws - 1) / ws * ws, to = b.to / ws * ws;
    const int period = b.period / gcd(b.period, ws) * ws;  // lcm
    return normalized((RepeatedBand){from, to, period, b.columns});
}

RepeatedBand repeated_band_meet(RepeatedBand a, RepeatedBand b) {
    if (!repeated_band_skipped(a) || !repeated_band_skipped(b) || a.columns != b.columns)
        return repeated_band_none();
    const int from = a.from > b.from ? a.from : b.from, to = a.to < b.to ? a.to : b.to;
    const int period = a.period / gcd(a.period, b.period) * b.period;  // lcm
    return normalized((RepeatedBand){from, to, period, a.columns});
}

int repeated_band_spans(RepeatedBand b, int size, int span[2][2]) {
    span[0][0] = 0;
    if (!repeated_band_skipped(b) || b.to > size) {
        span[0][1] = size;
        return 1;
    }
    span[0][1] = b.from + b.period;
    if (b.to == size) return 1;
    span[1][0] = b.to;
    span[1][1] = size;
    return 2;
}

int repeated_band_row_spans(RepeatedBand b, int rows, int span[2][2]) {
    return repeated_band_spans(b.columns ? repeated_band_none() : b, rows, span);
}

int repeated_band_column_spans(RepeatedBand b, int cols, int span[2][2]) {
    return repeated_band_spans(b.columns ? b : repeated_band_none(), cols, span);
}

int repeated_band_next_run(RepeatedBand b, int cols, int y0, int y1, int *state, size_t *t0,
                           size_t *t1) {
    int span[2][2] = {{0, INT_MAX}, {0, 0}}, n = 1;
    if (b.columns && repeated_band_skipped(b)) {
        // The column spans of each row.
        n = repeated_band_spans(b, cols, span);
        const int y = y0 + *state / n, i = *state % n;
        if (y >= y1) return 0;
        (*state)++;
        *t0 = (size_t)y * cols + span[i][0], *t1 = (size_t)y * cols + span[i][1];
        return 1;
    }
    if (repeated_band_skipped(b)) {  // whole rows around the band
        span[0][1] = b.from + b.period;
        span[1][0] = b.to, span[1][1] = INT_MAX;
        n = 2;
    }
    while (*state < n) {  // cut to [y0, y1)
        const int i = (*state)++;
        const int a = span[i][0] > y0 ? span[i][0] : y0, e = span[i][1] < y1 ? span[i][1] : y1;
        if (a < e) {
            *t0 = (size_t)a * cols, *t1 = (size_t)e * cols;
            return 1;
        }
    }
    return 0;
}

void repeated_band_fill(float *x, int y0, int y1, int cols, size_t c, RepeatedBand b) {
    if (!repeated_band_skipped(b)) return;
    const size_t row = (size_t)cols * c;
    if (!b.columns) {
        for (int y = b.from + b.period > y0 ? b.from + b.period : y0; y < b.to && y < y1; y++)
            memcpy(x + (size_t)(y - y0) * row, x + (size_t)(y - y0 - b.period) * row,
                   sizeof(float) * row);
        return;
    }
    // Within each row, a period of tokens at a time: each copy's source lies
    // wholly before its destination.
    for (int y = y0; y < y1; y++) {
        float *r = x + (size_t)(y - y0) * row;
        for (int t = b.from + b.period; t < b.to; t += b.period) {
            const int n = b.to - t < b.period ? b.to - t : b.period;
            memcpy(r + (size_t)t * c, r + (size_t)(t - b.period) * c, sizeof(float) * n * c);
        }
    }
}
