// Bands of repeated rows or columns in a token-major (rows, cols, channels)
// activation, so that a layer computes each distinct row (column) once.
//
// SAM pads the resized image with zeros up to img_size x img_size: under a
// landscape image (rows at the bottom) or right of a portrait one (columns):
// a third of a 3:2 photo's input, 44% of a 16:9 one's. TinyViT computes every
// output token from a fixed window of input tokens with the same arithmetic
// wherever it is (convolutions, per-token layers), or every attention window
// from its own tokens, so bitwise equal input rows give bitwise equal output
// rows (likewise columns), and a band of repeated rows lives on through the
// layers, a little narrower after each (a 3x3 convolution loses a row at each
// end, an attention layer the partial windows). Nothing here approximates: a
// skipped token is a copy of one that equals it.
//
// RepeatedBand {from, to, period, columns}: row y equals row y - period for
// every y in [from + period, to) (columns = 1: column x equals column
// x - period, in every row). A layer computes the tokens that
// repeated_band_next_run lists and copies the others (repeated_band_fill).
// "None" is any band that skips nothing; then every token is computed.
#ifndef SAM_MODEL_REPEATED_BAND_H
#define SAM_MODEL_REPEATED_BAND_H

#include <stddef.h>

typedef struct RepeatedBand {
    int from, to, period;
    int columns;  // 0: whole rows repeat; 1: columns of every row repeat
} RepeatedBand;

RepeatedBand repeated_band_none(void);

// Rows (columns) a layer with this band does not compute.
int repeated_band_skipped(RepeatedBand b);

// The rows at the bottom of a channel-major (channels, h, w) image that are
// bitwise equal to its last row (SAM's zero padding), as a band of period 1;
// failing that, the columns at the right equal to its last column.
RepeatedBand repeated_band_of_image(const float *image, int channels, int h, int w);

// The band after a 3x3 convolution with padding 1 and this stride over a
// grid of `size` rows and columns: output row y reads input rows
// y * stride - 1 .. y * stride + 1 (row -1 and row `size` are the zero
// padding, outside any band); likewise columns.
RepeatedBand repeated_band_after_conv3x3(RepeatedBand b, int size, int stride);

// The band after attention within ws x ws windows on a grid starting at 0:
// the windows inside the band, with the period a multiple of ws (the
// attention biases make the tokens inside a window differ).
RepeatedBand repeated_band_after_windows(RepeatedBand b, int ws);

// The band of a per-token combination (a residual sum) of two activations.
RepeatedBand repeated_band_meet(RepeatedBand a, RepeatedBand b);

// The ranges [span[i][0], span[i][1]) of the band's axis (rows, or columns)
// a layer computes out of `size`: all but [from + period, to). Returns how
// many (1 or 2).
int repeated_band_spans(RepeatedBand b, int size, int span[2][2]);

// The rows (columns) a layer computes along one axis of a grid: the spans
// above for a band on that axis, else all `size` of them.
int repeated_band_row_spans(RepeatedBand b, int rows, int span[2][2]);
int repeated_band_column_spans(RepeatedBand b, int cols, int span[2][2]);

// The runs of consecutive tokens a layer computes within rows [y0, y1) of a
// grid `cols` wide, one per call: sets [*t0, *t1) (token indices of the
// whole grid) and returns 1, or returns 0 when there are no more. *state
// starts at 0.
int repeated_band_next_run(RepeatedBand b, int cols, int y0, int y1, int *state, size_t *t0,
                           size_t *t1);

// The skipped tokens of rows [y0, y1) of a grid `cols` wide with c floats a
// token, copied from the tokens a period before them; x points at row y0
// (a rows band copies from rows above, which must be among them).
void repeated_band_fill(float *x, int y0, int y1, int cols, size_t c, RepeatedBand b);

#endif
