// SAM prompt encoder: segment_anything/modeling/prompt_encoder.py
// (PromptEncoder, PositionEmbeddingRandom) at commit dca509f.
#include "prompt_encoder.h"

#include <math.h>
#include <string.h>

#include "../kernels/kernels.h"

// PositionEmbeddingRandom._pe_encoding of one point (x, y) already
// normalised to [0, 1]: c = 2c - 1, c @ gaussian (2, D/2), * 2 pi,
// [sin, cos]. out[j] and out[half + j] are written with a stride (1 for a
// token row, grid*grid for the channel-major dense map).
static void pe_encode(float *out, size_t stride, float x, float y, const float *gaussian,
                      int half) {
    // `2 * coords - 1` in float32.
    const float cx = 2.0f * x - 1.0f, cy = 2.0f * y - 1.0f;
    // `2 * np.pi * coords`: the Python double 2*pi (6.283185307179586)
    // becomes a float32 scalar.
    const float two_pi = (float)6.283185307179586;
    for (int j = 0; j < half; j++) {
        // coords @ matrix, inner dimension 2: PyTorch's CPU matmul (checked
        // on torch 1.13) rounds the first product and fuses the second.
        const float p0 = cx * gaussian[j];
        float v = fmaf(cy, gaussian[half + j], p0);
        v = two_pi * v;
        out[(size_t)j * stride] = sinf(v);
        out[(size_t)(half + j) * stride] = cosf(v);
    }
}

int prompt_sparse_count(int n_points, int has_box) {
    // PromptEncoder.forward: points (padded with one point when there is no
    // box) only when points are given, then 2 box corners.
    int n = 0;
    if (n_points > 0) n += n_points + (has_box ? 0 : 1);
    if (has_box) n += 2;
    return n;
}

void prompt_encode_sparse(float *sparse, const float *coords, const int *labels, int n_points,
                          const float *box, const PromptEncoderWeights *w, const SamConfig *cfg) {
    // sparse is (prompt_sparse_count(n_points, box != NULL), D).
    const int D = cfg->prompt_dim, half = D / 2;
    // forward_with_coords divides x by image_size[1] and y by image_size[0];
    // the padded input is square (img_size on both axes).
    const float size = (float)cfg->img_size;
    float *row = sparse;
    if (n_points > 0) {
        // _embed_points: points + 0.5 (pixel centres), PE, then per label.
        for (int i = 0; i < n_points; i++, row += D) {
            const float x = (coords[2 * i] + 0.5f) / size, y = (coords[2 * i + 1] + 0.5f) / size;
            pe_encode(row, 1, x, y, w->pe_gaussian, half);
            // labels == -1 -> zeroed + not_a_point_embed; 0 / 1 add
            // point_embeddings[0] / [1]; any other label adds nothing.
            if (labels[i] == -1) {
                for (int c = 0; c < D; c++) row[c] = 0.0f + w->not_a_point_embed[c];
            } else if (labels[i] == 0 || labels[i] == 1) {
                add_inplace(row, w->point_embed[labels[i]], (size_t)D);
            }
        }
        if (!box) {
            // Padding point (0, 0) with label -1, appended after the +0.5
            // shift, so its encoding is exactly not_a_point_embed.
            for (int c = 0; c < D; c++) row[c] = 0.0f + w->not_a_point_embed[c];
            row += D;
        }
    }
    if (box) {
        // _embed_boxes: boxes + 0.5, reshaped into two corners that add
        // point_embeddings[2] and [3].
        for (int k = 0; k < 2; k++, row += D) {
            const float x = (box[2 * k] + 0.5f) / size, y = (box[2 * k + 1] + 0.5f) / size;
            pe_encode(row, 1, x, y, w->pe_gaussian, half);
            add_inplace(row, w->point_embed[2 + k], (size_t)D);
        }
    }
}

void prompt_dense_pe(float *pe, const PromptEncoderWeights *w, const SamConfig *cfg) {
    // PositionEmbeddingRandom.forward((G, G)): cumsum of ones - 0.5 gives
    // cell centres, divided by the grid size; stacked as (x, y); output
    // permuted to (D, G, G).
    const int G = cfg->grid, half = cfg->prompt_dim / 2;
    const size_t hw = (size_t)G * G;
    for (int i = 0; i < G; i++) {
        const float y = ((float)(i + 1) - 0.5f) / (float)G;
        for (int j = 0; j < G; j++) {
            const float x = ((float)(j + 1) - 0.5f) / (float)G;
            pe_encode(pe + (size_t)i * G + j, hw, x, y, w->pe_gaussian, half);
        }
    }
}

// nn.Conv2d(cin, cout, kernel_size=2, stride=2) on a channel-major map:
// in (cin, 2h, 2w) -> out (cout, h, w); weight (cout, cin, 2, 2).
static void conv2x2_s2_forward(float *out, const float *in, const float *weight,
                               const float *bias, int cin, int cout, int h, int w) {
    const int in_w = 2 * w;
    const size_t in_plane = (size_t)4 * h * w, out_plane = (size_t)h * w;
    for (int co = 0; co < cout; co++) {
        float *o = out + co * out_plane;
        for (int i = 0; i < h; i++) {
            for (int j = 0; j < w; j++) {
                float acc = 0.0f;
                for (int ci = 0; ci < cin; ci++) {
                    const float *k = weight + ((size_t)co * cin + ci) * 4;
                    const float *x = in + ci * in_plane + (size_t)(2 * i) * in_w + 2 * j;
                    acc += k[0] * x[0] + k[1] * x[1] + k[2] * x[in_w] + k[3] * x[in_w + 1];
                }
                o[(size_t)i * w + j] = acc + bias[co];
            }
        }
    }
}

// Arena allocations are 64-byte aligned: count each as a multiple of 16 floats.
static size_t arena_rounded(size_t n) { return (n + 15) & ~(size_t)15; }

size_t prompt_dense_scratch_floats(const SamConfig *cfg) {
    const size_t G = (size_t)cfg->grid, m4 = (size_t)(cfg->mask_in_chans / 4);
    return arena_rounded(m4 * 4 * G * G) + arena_rounded((size_t)cfg->mask_in_chans * G * G);
}

int prompt_encode_dense(float *dense, const float *mask_input, const PromptEncoderWeights *w,
                        const SamConfig *cfg, Arena *scratch, SamError *err) {
    const int D = cfg->prompt_dim, G = cfg->grid, M = cfg->mask_in_chans, M4 = M / 4;
    const size_t hw = (size_t)G * G;
    if (!mask_input) {
        // no_mask_embed (1, D) broadcast over the grid.
        for (int c = 0; c < D; c++)
            for (size_t p = 0; p < hw; p++) dense[c * hw + p] = w->no_mask_embed[c];
        return 0;
    }
    // mask_downscaling: (1, 4G, 4G) -> conv 2x2 s2 -> LayerNorm2d -> GELU
    // -> conv 2x2 s2 -> LayerNorm2d -> GELU -> conv 1x1 -> (D, G, G).
    const size_t mark = arena_mark(scratch);
    float *a1 = arena_floats(scratch, (size_t)M4 * 4 * hw);  // (M/4, 2G, 2G)
    float *a2 = arena_floats(scratch, (size_t)M * hw);       // (M, G, G)
    if (!a1 || !a2) {
        arena_reset(scratch, mark);
        return sam_error(err, "prompt encoder: scratch arena exhausted (%zu floats needed)",
                         prompt_dense_scratch_floats(cfg));
    }
    conv2x2_s2_forward(a1, mask_input, w->mask_conv1_w, w->mask_conv1_b, 1, M4, 2 * G, 2 * G);
    layernorm_channels(a1, a1, w->mask_norm1.weight, w->mask_norm1.bias, M4, 4 * G * G, 1e-6f);
    gelu_inplace(a1, (size_t)M4 * 4 * hw);
    conv2x2_s2_forward(a2, a1, w->mask_conv2_w, w->mask_conv2_b, M4, M, G, G);
    layernorm_channels(a2, a2, w->mask_norm2.weight, w->mask_norm2.bias, M, G * G, 1e-6f);
    gelu_inplace(a2, (size_t)M * hw);
    // 1x1 conv: dense (D, hw) = W (D, M) @ a2 (M, hw) + bias.
    for (int c = 0; c < D; c++)
        for (size_t p = 0; p < hw; p++) dense[c * hw + p] = w->mask_conv3_b[c];
    gemm_nn(D, (int)hw, M, 1.0f, w->mask_conv3_w, M, a2, (int)hw, 1.0f, dense, (int)hw);
    arena_reset(scratch, mark);
    return 0;
}
