// The mask decoder's two-way transformer with the image tokens in factored
// form (decoder_lowrank.h):
//   keys_l = r_l (.) A_l + Y_l U_l,   A_l = keys_0 diag(G_l).
// Tokens are rows; Y is stored transposed, Yt (R, N), so that each of its
// columns (one per probability vector) is contiguous; N = 4096 image rows,
// D = 256, internal width I = 128 in H = 8 heads, T prompt tokens.
//
// Block l of segment_anything's TwoWayAttentionBlock touches the image in
// three places; with a_{h,t} (width D) a prompt-side vector:
//  1. scores keys_l . a and weighted sums p^T keys_l (token-to-image, the
//     image-to-token scores): keys_l . a = r (A_l . a) + Y_l (U_l a), and
//     a = W^T x_{h,t} lies in the row space of a projection W (I, D), so
//     A_l . a = (A_l W^T)_h x_{h,t}: per-image (N, I) products times
//     head-width vectors, and Y_l (U_l a): N R_l per vector. Likewise
//     W_v[h] p^T keys_l = (p (.) r)^T (A_l W_v^T)_h + (p^T Y_l) (U_l W_v[h]^T).
//  2. the image-to-token update x = keys_l + P V, P (N, H T) the
//     probabilities and V (H T, D) the values through the output projection
//     (decoder_attention.c: g_{h,t} = W_o[:, h] v_{t,h} + b_o / H), is
//     appended to the correction: x = r A_l + Y' W with Y' = [Y_l P],
//     W = [U_l; V] (as H (T - 1) + 1 rows, factored_from_image: each
//     head's probabilities sum to 1).
//  3. norm4: with m_A, Ac = A_l - m_A the row means and centred rows of A_l,
//     wbar the means of the rows of W and Wc = W - wbar,
//       mean(x) = r m_A + Y' wbar,   x - mean(x) = r Ac + Y' Wc,
//       var(x) = r^2 var(A_l) + (2 r / D) Y' (Ac . W^T) + Y' (Wc Wc^T / D) Y'^T
//     (Ac . Wc_j = Ac . W_j since Ac is centred), so
//       LN(x) = rho (x - mean) (.) gamma + beta
//             = (rho r) A_{l+1} + [rho Y' | -rho r m_A | 1] [Wc diag(gamma); gamma; beta]
//     using Ac diag(gamma) = A_{l+1} - m_A gamma: two more rows.
//     The products Ac . W_j go through per-image products as well: a row of
//     W that entered as a value vector g of block j <= l has since been
//     centred and scaled by gamma_j .. gamma_{l-1} (a linear map f), and
//     Ac . f(g) = f^T(Ac) . g with f^T(Ac) = B_{l,j} (decoder_lowrank.h), so
//     Ac . f(g) = (B_{l,j} W_o(j))_h v_{t,h} + B_{l,j} . b_o(j) / H; the
//     gamma_j and beta_j rows give B_{l,j+1} . gamma_j and B_{l,j+1} . beta_j.
// The variance is a sum of a non-negative term of A_l, a cross term and a
// positive semi-definite form of the correction, each of centred values, so
// nothing large cancels unless x itself is nearly constant.
// At the end the first upscaling convolution is one more product:
// W1 keys_L^T = (W1 A_L^T) diag(r) + (W1 U_L^T) Yt.
#include "decoder_lowrank.h"

#include <math.h>
#include <string.h>

#include "../kernels/kernels.h"
#include "../common/multiversion.h"
#include "decoder_attention.h"
#include "two_way_transformer.h"

// nn.LayerNorm default eps, as in two_way_transformer.c.
#define DECODER_LN_EPS 1e-5f

static size_t arena_rounded(size_t n) { return (n + 15) & ~(size_t)15; }
static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

// ---------------------------------------------------------------------------
// Head slices

static int head_dim(const SamConfig *cfg) { return cfg->attn_internal_dim / cfg->decoder_heads; }

static int packs_heads(const SamConfig *cfg) {
    return cfg->decoder_heads <= SAM_MAX_PACKED_HEADS &&
           gemm_pack_b_floats(cfg->grid * cfg->grid, head_dim(cfg)) > 0;
}

static size_t head_slices_floats(const SamConfig *cfg) {
    const int N = cfg->grid * cfg->grid;
    if (!packs_heads(cfg)) return (size_t)N * cfg->attn_internal_dim;
    return (size_t)cfg->decoder_heads * gemm_pack_b_floats(N, head_dim(cfg));
}

// hs from m (N, I), stored at *at (advanced past it); m may be scratch.
static void head_slices_make(HeadSlices *hs, float **at, const float *m, const SamConfig *cfg) {
    const int N = cfg->grid * cfg->grid, I = cfg->attn_internal_dim, hd = head_dim(cfg);
    memset(hs, 0, sizeof *hs);
    if (!packs_heads(cfg)) {
        memcpy(*at, m, sizeof(float) * (size_t)N * I);
        hs->full = *at;
        *at += (size_t)N * I;
        return;
    }
    for (int h = 0; h < cfg->decoder_heads; h++) {
        gemm_pack_b(&hs->head[h], *at, m + h * hd, I, N, hd, 1);
        *at += gemm_pack_b_floats(N, hd);
        // Only the packed form lives on; the products always match its shape.
        hs->head[h].b = NULL;
    }
}

// c (T, N) = x_h (T, hd) @ M_h^T + beta c.
static void head_scores(float *c, const float *x, int ldx, int T, const HeadSlices *hs, int h,
                        int hd, int N, int I, float beta) {
    if (hs->full)
        gemm_nt(T, N, hd, 1.0f, x, ldx, hs->full + h * hd, I, beta, c, N);
    else
        gemm_packed_b(T, N, hd, 1.0f, x, ldx, &hs->head[h], beta, c, N);
}

// ---------------------------------------------------------------------------
// Per model and per image

// Block 0 needs none (its per-image products include key_pe, r being 1).
size_t lowrank_model_floats(const SamConfig *cfg) {
    return (size_t)(2 * cfg->decoder_depth - 1) * head_slices_floats(cfg);
}

size_t lowrank_model_scratch_floats(const SamConfig *cfg) {
    return (size_t)cfg->grid * cfg->grid * cfg->attn_internal_dim;
}

void lowrank_model_init(LowRankModel *m, float *buffer, const float *key_pe,
                        const MaskDecoderWeights *w, const SamConfig *cfg, float *scratch) {
    const int N = cfg->grid * cfg->grid, D = cfg->prompt_dim, I = cfg->attn_internal_dim;
    const int L = cfg->decoder_depth;
    float *at = buffer;
    memset(m, 0, sizeof *m);
    for (int l = 1; l <= L; l++) {
        const AttentionWeights *t2i =
            l < L ? &w->layers[l].cross_attn_token_to_image : &w->final_attn_token_to_image;
        linear_forward(scratch, key_pe, t2i->k_proj.weight, NULL, N, D, I);
        head_slices_make(&m->pe_k[l], &at, scratch, cfg);
        if (l == L) break;
        linear_forward(scratch, key_pe, w->layers[l].cross_attn_image_to_token.q_proj.weight, NULL,
                       N, D, I);
        head_slices_make(&m->pe_q[l], &at, scratch, cfg);
    }
}

size_t lowrank_image_floats(const SamConfig *cfg) {
    const size_t N = (size_t)cfg->grid * cfg->grid, E = (size_t)4 * cfg->upscale_dim1;
    const size_t scores = head_slices_floats(cfg), sums = N * (size_t)cfg->attn_internal_dim;
    size_t n = scores + sums + N * E;  // final attention's k, v; the upscaling product
    for (size_t l = 0; l < (size_t)cfg->decoder_depth; l++)
        n += 2 * N + 2 * scores + sums + (l + 1) * (scores + N) + 2 * l * N;
    return n;
}

size_t lowrank_image_scratch_floats(const SamConfig *cfg) {
    const size_t N = (size_t)cfg->grid * cfg->grid;
    return N * (2 * (size_t)cfg->prompt_dim + cfg->attn_internal_dim);
}

// The sums below run over 256 channels for each of the 4096 image rows, per
// image: with one accumulator each add waits for the previous one, so they
// keep four partial sums (in double: no less exact than one float chain).
static double sum4(const double part[4]) { return (part[0] + part[1]) + (part[2] + part[3]); }

static float dot(const float *a, const float *b, int n) {
    double part[4] = {0.0, 0.0, 0.0, 0.0};
    int i = 0;
    for (; i + 4 <= n; i += 4)
        for (int k = 0; k < 4; k++) part[k] += (double)a[i + k] * b[i + k];
    for (; i < n; i++) part[0] += (double)a[i] * b[i];
    return (float)sum4(part);
}

// Row means and biased variances of x (N, D), in double as layernorm_rows_scalar;
// centred (N, D) receives x minus its row means.
static void centre_rows(float *centred, float *mean, float *var, const float *x, int N, int D) {
    const int D4 = D & ~3;
    for (int n = 0; n < N; n++) {
        const float *row = x + (size_t)n * D;
        double part[4] = {0.0, 0.0, 0.0, 0.0};
        for (int c = 0; c < D4; c += 4)
            for (int k = 0; k < 4; k++) part[k] += row[c + k];
        for (int c = D4; c < D; c++) part[0] += row[c];
        const double m = sum4(part) / D;
        part[0] = part[1] = part[2] = part[3] = 0.0;
        for (int c = 0; c < D4; c += 4)
            for (int k = 0; k < 4; k++) part[k] += (row[c + k] - m) * (row[c + k] - m);
        for (int c = D4; c < D; c++) part[0] += (row[c] - m) * (row[c] - m);
        const double ss = sum4(part);
        if (mean) mean[n] = (float)m;
        if (var) var[n] = (float)(ss / D);
        for (int c = 0; c < D; c++) centred[(size_t)n * D + c] = (float)(row[c] - m);
    }
}

static void scale_columns(float *x, const float *gain, int N, int D) {
    for (int n = 0; n < N; n++)
        for (int c = 0; c < D; c++) x[(size_t)n * D + c] *= gain[c];
}

void lowrank_image_compute(LowRankImage *img, float *buffer, const float *keys,
                           const float *key_pe, const float *upscale_w,
                           const MaskDecoderWeights *w, const SamConfig *cfg, float *scratch) {
    const int N = cfg->grid * cfg->grid, D = cfg->prompt_dim, I = cfg->attn_internal_dim;
    const int L = cfg->decoder_depth, E = 4 * cfg->upscale_dim1;
    float *a = scratch, *b = a + (size_t)N * D, *product = b + (size_t)N * D;
    float *at = buffer;
    memcpy(a, keys, sizeof(float) * (size_t)N * D);
    for (int l = 0; l <= L; l++) {
        LowRankBlock *blk = &img->block[l];
        memset(blk, 0, sizeof *blk);
        if (l > 0) scale_columns(a, w->layers[l - 1].norm4.weight, N, D);  // A_l
        const AttentionWeights *t2i =
            l < L ? &w->layers[l].cross_attn_token_to_image : &w->final_attn_token_to_image;
        // Block 0's keys are A_0 (r = 1): its score products take key_pe in.
        const float *scored = a;
        if (l == 0) {
            add_to(b, a, key_pe, (size_t)N * D);
            scored = b;
        }
        linear_forward(product, scored, t2i->k_proj.weight, NULL, N, D, I);
        head_slices_make(&blk->k, &at, product, cfg);
        if (l < L) {
            linear_forward(product, scored, w->layers[l].cross_attn_image_to_token.q_proj.weight,
                           NULL, N, D, I);
            head_slices_make(&blk->q, &at, product, cfg);
        }
        // (A_l W_v^T)^T = W_v A_l^T, made in that layout.
        gemm_nt(I, N, D, 1.0f, t2i->v_proj.weight, D, a, D, 0.0f, at, N);
        blk->v_t = at, at += (size_t)N * I;
        if (l == L) break;
        float *mean = at, *var = at + N;
        at += 2 * (size_t)N;
        centre_rows(b, mean, var, a, N, D);
        blk->mean = mean, blk->var = var;
        // b = B_{l,j} from j = l down to 0.
        for (int j = l; j >= 0; j--) {
            const AttentionWeights *i2t = &w->layers[j].cross_attn_image_to_token;
            gemm_nn(N, I, D, 1.0f, b, D, i2t->out_proj.weight, I, 0.0f, product, I);
            head_slices_make(&blk->cov_o[j], &at, product, cfg);
            float *cov_b = at;
            at += N;
            for (int n = 0; n < N; n++) cov_b[n] = dot(b + (size_t)n * D, i2t->out_proj.bias, D);
            blk->cov_ob[j] = cov_b;
            if (j == 0) break;
            const NormWeights *norm = &w->layers[j - 1].norm4;
            float *cg = at, *cb = at + N;
            at += 2 * (size_t)N;
            for (int n = 0; n < N; n++) {
                cg[n] = dot(b + (size_t)n * D, norm->weight, D);
                cb[n] = dot(b + (size_t)n * D, norm->bias, D);
            }
            blk->cov_gamma[j - 1] = cg, blk->cov_beta[j - 1] = cb;
            scale_columns(b, norm->weight, N, D);
            centre_rows(b, NULL, NULL, b, N, D);
        }
    }
    float *up = at;
    gemm_nt(E, N, D, 1.0f, upscale_w, D, a, D, 0.0f, up, N);
    img->upscale = up;
}

// ---------------------------------------------------------------------------
// Cost model and sizes

// Rows each block adds to the correction (factored_from_image,
// factored_norm): H (T - 1) probabilities, a row of ones, two for the norm.
static int block_rows(int heads, int T) { return heads * (T - 1) + 3; }

// Multiply-adds per prompt of the factored form and of forming the image
// tokens after block 0 (lowrank_first_block, then two_way_transformer.c's
// rearranged attentions, or the reference attention where those do not
// pay), leaving out what both share. Measured in WASM on ViT-B, the two
// take the same time at 12 points (18 tokens); the counts put the
// crossing at 19 tokens.
static double lowrank_cost(int T, const SamConfig *cfg) {
    const double N = (double)cfg->grid * cfg->grid, I = cfg->attn_internal_dim;
    const double HT = (double)cfg->decoder_heads * T, E = 4.0 * cfg->upscale_dim1;
    const int L = cfg->decoder_depth;
    const double rows = block_rows(cfg->decoder_heads, T);
    double c = 0.0;
    for (int l = 0; l < L; l++) {
        const double R = l * rows, Rp = R + rows - 2;
        c += 5.0 * N * I * T + 3.0 * N * R * HT;    // scores and sums of both attentions
        c += (l + 1) * N * I * T + 0.6 * N * Rp * Rp;  // norm4 statistics
    }
    const double R = L * rows;
    return c + 3.0 * N * I * T + 2.0 * N * R * HT + N * R * E;
}

static double formed_cost(int T, const SamConfig *cfg) {
    const double N = (double)cfg->grid * cfg->grid, I = cfg->attn_internal_dim;
    const double D = cfg->prompt_dim, HT = (double)cfg->decoder_heads * T;
    const double E = 4.0 * cfg->upscale_dim1;
    const double per_attention = 2.0 * HT < 3.0 * I ? 2.0 * N * D * HT : 3.0 * N * D * I;
    return (2.0 * cfg->decoder_depth - 1) * per_attention + N * HT * D + N * D * E;
}

int lowrank_pays(int n_tokens, const SamConfig *cfg) {
    return lowrank_cost(n_tokens, cfg) < formed_cost(n_tokens, cfg);
}

// Buffers of one forward, in allocation order.
typedef struct LowRankSizes {
    size_t r, yt, u, values;        // (N), (R, N), (R, D), (L, T, I)
    size_t q_pe, attn_out, tokens;  // (T, D), (T, D), token-side scratch
    size_t work;                    // the largest step
} LowRankSizes;

static void lowrank_sizes(LowRankSizes *s, const SamConfig *cfg, int T) {
    const size_t N = (size_t)cfg->grid * cfg->grid, D = (size_t)cfg->prompt_dim;
    const size_t I = (size_t)cfg->attn_internal_dim, L = (size_t)cfg->decoder_depth;
    const size_t HT = (size_t)cfg->decoder_heads * T, rows = (size_t)block_rows(cfg->decoder_heads, T);
    const size_t R = L * rows, E = (size_t)4 * cfg->upscale_dim1;
    s->r = N;
    // Block L - 1's probabilities arrive as H T rows before they are compacted.
    s->yt = max_size(R, (L - 1) * rows + HT) * N;
    s->u = R * D;
    s->values = L * T * I;
    s->q_pe = s->attn_out = (size_t)T * D;
    s->tokens = two_way_tokens_scratch_floats(cfg, T);
    const size_t scores_inner = HT * D + R * HT;  // folded vectors, their U products
    const size_t to_image = 2 * T * I + HT * N + scores_inner + HT * R + R * I;
    const size_t from_image = HT * D + T * I + HT + max_size(scores_inner, HT * D);
    const size_t norm = 2 * R * N + R * R + 3 * N + T * I;
    s->work = max_size(max_size(to_image, from_image), max_size(norm, R * E));
}

size_t lowrank_forward_scratch_floats(const SamConfig *cfg, int n_tokens) {
    LowRankSizes s;
    lowrank_sizes(&s, cfg, n_tokens);
    return arena_rounded(s.r) + arena_rounded(s.yt) + arena_rounded(s.u) +
           arena_rounded(s.values) + arena_rounded(s.q_pe) + arena_rounded(s.attn_out) +
           arena_rounded(s.tokens) + arena_rounded(s.work);
}

// ---------------------------------------------------------------------------
// The forward

// The image of one forward: r, Yt (R, N), U (R, D) of keys_l.
typedef struct Factored {
    float *r;  // NULL while all ones (block 0)
    float *yt, *u;
    int rank, n, d;
} Factored;

// x (rows, n) *= r per column.
SAM_MULTIVERSION static void scale_by_rows(float *x, const float *r, int rows, int n) {
    for (int i = 0; i < rows; i++) {
        float *row = x + (size_t)i * n;
        for (int j = 0; j < n; j++) row[j] *= r[j];
    }
}

// s (H T, N), row h T + t: (keys_l + key_pe)_n . W[h]^T x_{t,h} + bias_{h,t}
// for the vectors x (T, I), W (I, D) the projection of the image side: from
// the per-image product ka = A_l W^T, the per-model pe = key_pe W^T (NULL:
// ka includes it) and the correction (see the top of the file). bias: (H T)
// or NULL. work: H T D + R H T floats.
static void factored_scores(float *s, const float *x, int T, const HeadSlices *ka,
                            const HeadSlices *pe, const float *proj_w, const float *bias,
                            const Factored *f, int heads, int I, float *work) {
    const int N = f->n, D = f->d, hd = I / heads, HT = heads * T, R = f->rank;
    for (int h = 0; h < heads; h++)
        head_scores(s + (size_t)h * T * N, x + h * hd, I, T, ka, h, hd, N, I, 0.0f);
    if (f->r) scale_by_rows(s, f->r, HT, N);
    for (int h = 0; pe && h < heads; h++)
        head_scores(s + (size_t)h * T * N, x + h * hd, I, T, pe, h, hd, N, I, 1.0f);
    if (R == 0) {
        for (int i = 0; bias && i < HT; i++) {
            float *row = s + (size_t)i * N;
            for (int n = 0; n < N; n++) row[n] += bias[i];
        }
        return;
    }
    float *a = work;                    // (HT, D) a_{h,t} = W[h]^T x_{t,h}
    float *c = a + (size_t)HT * D;      // (R, HT) U a^T
    for (int h = 0; h < heads; h++)
        gemm_nn(T, D, hd, 1.0f, x + h * hd, I, proj_w + (size_t)h * hd * D, D, 0.0f,
                a + (size_t)h * T * D, D);
    gemm_nt(R, HT, D, 1.0f, f->u, D, a, D, 0.0f, c, HT);
    // The last row of Yt is all ones (factored_norm): the bias rides on it.
    for (int i = 0; bias && i < HT; i++) c[(size_t)(R - 1) * HT + i] += bias[i];
    gemm_tn(HT, N, R, 1.0f, c, HT, f->yt, N, 1.0f, s, N);
}

// out (T, D) = Attention(q_in, keys + key_pe, keys) with keys = f: the
// token-to-image attention. The key bias adds q_{t,h} . b_k[h] to every
// score of a softmax over n, so it drops out (decoder_attention.c).
static void factored_to_image(float *out, const float *q_in, int T, const HeadSlices *ka_k,
                              const HeadSlices *pe_k, const float *ka_v_t, const Factored *f,
                              const AttentionWeights *w, int heads, int I, float *work) {
    const int N = f->n, D = f->d, hd = I / heads, HT = heads * T, R = f->rank;
    float *q = work;                       // (T, I)
    float *o = q + (size_t)T * I;          // (T, I)
    float *s = o + (size_t)T * I;          // (HT, N)
    float *rest = s + (size_t)HT * N;
    linear_apply(q, q_in, &w->q_proj, T, D, I);
    // The scores' 1 / sqrt(head_dim) applied to q (one rounding apart from
    // torch's division of the scores, and no pass over them).
    const float inv_divisor = (float)(1.0 / sqrt((double)hd));
    for (int i = 0; i < T * I; i++) q[i] *= inv_divisor;
    factored_scores(s, q, T, ka_k, pe_k, w->k_proj.weight, NULL, f, heads, I, rest);
    softmax_rows(s, HT, N);
    // o_{t,h} = W_v[h] sum_n p_n keys_n + b_v[h]
    for (int t = 0; t < T; t++) memcpy(o + (size_t)t * I, w->v_proj.bias, sizeof(float) * I);
    if (R > 0) {
        float *py = rest;                   // (HT, R) p^T Y
        float *uwv = py + (size_t)HT * R;   // (R, I) U W_v^T
        gemm_dot(HT, R, N, 1.0f, s, N, f->yt, N, NULL, 0.0f, py, R);
        gemm_nt(R, I, D, 1.0f, f->u, D, w->v_proj.weight, D, 0.0f, uwv, I);
        for (int h = 0; h < heads; h++)
            gemm_nn(T, hd, R, 1.0f, py + (size_t)h * T * R, R, uwv + h * hd, I, 1.0f, o + h * hd,
                    I);
    }
    // sum_n p_n r_n (A_l W_v^T)_n, head by head.
    for (int h = 0; h < heads; h++)
        gemm_dot(T, hd, N, 1.0f, s + (size_t)h * T * N, N, ka_v_t + (size_t)h * hd * N, N, f->r,
                 1.0f, o + h * hd, I);
    linear_apply(out, o, &w->out_proj, T, I, D);
}

// The image-to-token attention's probabilities p (H T, N), row h T + t, on
// the image f (keys + key_pe: the per-image products blk->q, pe_q, the
// correction), and its values g (H T, D); values (T, I) receives
// v_proj(queries). work: T I + H T + max(H T D, factored_scores' work).
static void image_to_token_attention(float *p, float *g, float *values, const float *q_pe,
                                     const float *queries, int T, const LowRankBlock *blk,
                                     const HeadSlices *pe_q, const AttentionWeights *w,
                                     const Factored *f, int heads, int I, float *work) {
    const int N = f->n, D = f->d, hd = I / heads, HT = heads * T;
    float *k = work;                    // (T, I)
    float *e = k + (size_t)T * I;       // (HT)
    float *rest = e + HT;
    linear_apply(k, q_pe, &w->k_proj, T, D, I);
    linear_apply(values, queries, &w->v_proj, T, D, I);
    // 1 / sqrt(head_dim) on k, as on q in factored_to_image.
    const float inv_divisor = (float)(1.0 / sqrt((double)hd));
    for (int i = 0; i < T * I; i++) k[i] *= inv_divisor;
    // The query bias adds e_{h,t} = b_q[h] . k_{t,h}, which varies over the
    // softmax's t.
    for (int h = 0; h < heads; h++)
        for (int t = 0; t < T; t++) e[h * T + t] = dot(w->q_proj.bias + h * hd, k + (size_t)t * I + h * hd, hd);
    factored_scores(p, k, T, &blk->q, pe_q, w->q_proj.weight, e, f, heads, I, rest);
    for (int h = 0; h < heads; h++) softmax_cols(p + (size_t)h * T * N, T, N);
    const AttentionDims dims = {D, I, heads};
    attention_output_values(g, values, T, dims, w);
}

// The image-to-token attention of block l: its probabilities p (H T, N)
// and values g (H T, D) (decoder_attention.c, attention_from_image_add,
// derives g) are appended to Yt and U. Each head's probabilities sum to 1
// over t, so sum_t p_t g_t = sum_{t < T-1} p_t (g_t - g_{T-1}) + g_{T-1}:
// H (T - 1) rows of probabilities, then a row of ones whose U row is
// sum_h g_{h,T-1}. values: (T, I) receives v_proj(queries) for the norm
// statistics.
static void factored_from_image(Factored *f, float *values, const float *q_pe,
                                const float *queries, int T, const LowRankBlock *blk,
                                const HeadSlices *pe_q, const AttentionWeights *w, int heads, int I,
                                float *work) {
    const int N = f->n, D = f->d, HT = heads * T;
    float *s = f->yt + (size_t)f->rank * N;
    float *g = work;  // (HT, D)
    image_to_token_attention(s, g, values, q_pe, queries, T, blk, pe_q, w, f, heads, I,
                             g + (size_t)HT * D);
    for (int h = 0; h < heads; h++)
        for (int t = 0; t < T - 1; t++)
            if (h > 0)
                memmove(s + ((size_t)h * (T - 1) + t) * N, s + ((size_t)h * T + t) * N,
                        sizeof(float) * N);
    float *ones = s + (size_t)heads * (T - 1) * N;
    for (int n = 0; n < N; n++) ones[n] = 1.0f;
    float *u = f->u + (size_t)f->rank * D, *u_ones = u + (size_t)heads * (T - 1) * D;
    memset(u_ones, 0, sizeof(float) * D);
    for (int h = 0; h < heads; h++) {
        const float *last = g + ((size_t)h * T + T - 1) * D;
        for (int t = 0; t < T - 1; t++) {
            float *row = u + ((size_t)h * (T - 1) + t) * D;
            const float *gt = g + ((size_t)h * T + t) * D;
            for (int c = 0; c < D; c++) row[c] = gt[c] - last[c];
        }
        for (int c = 0; c < D; c++) u_ones[c] += last[c];
    }
    f->rank += heads * (T - 1) + 1;
}

// Rows of the Gram matrix per block of the quadratic form (factored_norm):
// a multiple of the GEMM tiles' heights (6 in WASM and AVX2).
#define QUAD_BLOCK 24

// The per-row sums over the rows j of Yt of Yt[j] * x[j] into acc (N).
SAM_MULTIVERSION static void accumulate_products(float *acc, const float *yt, const float *x,
                                                 int rows, int n) {
    for (int j = 0; j < rows; j++) {
        const float *y = yt + (size_t)j * n, *xr = x + (size_t)j * n;
        for (int i = 0; i < n; i++) acc[i] += y[i] * xr[i];
    }
}

// norm4 of block l on x = r A_l + Yt^T W, Yt and W the first f->rank rows
// (block l's image-to-token update appended), leaving f as keys_{l+1}.
// values: (l + 1, T, I) v_proj(queries) of blocks 0 .. l.
static void factored_norm(Factored *f, int T, int l, const LowRankBlock *blk, const float *values,
                          const NormWeights *norm, int heads, int I, float *work) {
    const int N = f->n, D = f->d, hd = I / heads, Rp = f->rank, P = heads * (T - 1);
    float *cov = work;                     // (Rp, N) Ac . W_j
    float *z = cov + (size_t)Rp * N;       // (Rp, N) block-triangular (Wc Wc^T / D) Yt
    float *gram = z + (size_t)Rp * N;      // (Rp, Rp)
    float *cross = gram + (size_t)Rp * Rp, *quad = cross + N;  // (N) each
    float *diff = quad + N;                // (T, I)
    float *last_sum = diff + (size_t)T * I;  // (N)
    // Rows of W per block j <= l (factored_from_image): P rows from the
    // values v_t - v_{T-1}, one from v_{T-1} with the output bias, then
    // (j < l) gamma_j and beta_j. One product per head with T rows: the
    // T - 1 differences, then v_{T-1}, whose row lands on the next head's
    // first row (the last head's on row P) and is summed over the heads
    // before that row is written.
    for (int j = 0; j <= l; j++) {
        float *rows = cov + (size_t)j * block_rows(heads, T) * N;
        const float *v = values + (size_t)j * T * I, *last = v + (size_t)(T - 1) * I;
        for (int t = 0; t < T - 1; t++)
            for (int i = 0; i < I; i++) diff[(size_t)t * I + i] = v[(size_t)t * I + i] - last[i];
        memcpy(diff + (size_t)(T - 1) * I, last, sizeof(float) * I);
        for (int h = 0; h < heads; h++) {
            head_scores(rows + (size_t)h * (T - 1) * N, diff + h * hd, I, T, &blk->cov_o[j], h,
                        hd, N, I, 0.0f);
            const float *row = rows + (size_t)(h + 1) * (T - 1) * N;
            if (h == 0)
                memcpy(last_sum, row, sizeof(float) * N);
            else
                add_inplace(last_sum, row, (size_t)N);
        }
        float *ones = rows + (size_t)P * N;
        for (int n = 0; n < N; n++) ones[n] = last_sum[n] + blk->cov_ob[j][n];
        if (j < l) {
            memcpy(rows + (size_t)(P + 1) * N, blk->cov_gamma[j], sizeof(float) * N);
            memcpy(rows + (size_t)(P + 2) * N, blk->cov_beta[j], sizeof(float) * N);
        }
    }
    // Wc: the rows of W centred in place.
    for (int j = 0; j < Rp; j++) {
        float *row = f->u + (size_t)j * D;
        double s = 0.0;
        for (int c = 0; c < D; c++) s += row[c];
        const float mean = (float)(s / D);
        for (int c = 0; c < D; c++) row[c] -= mean;
    }
    gemm_nt(Rp, Rp, D, 1.0f / (float)D, f->u, D, f->u, D, 0.0f, gram, Rp);
    // The quadratic form y^T G y per image row through block rows of G only
    // from the diagonal on (G symmetric): with blocks b of QUAD_BLOCK rows,
    // y^T G y = sum_b y_b . (G_bb y_b + 2 sum_{b' > b} G_bb' y_b'), about 60%
    // of the multiply-adds of G Yt.
    for (int i = 0; i < Rp; i++)
        for (int j = 0; j < Rp; j++)
            if (j / QUAD_BLOCK > i / QUAD_BLOCK) gram[(size_t)i * Rp + j] *= 2.0f;
    for (int b0 = 0; b0 < Rp; b0 += QUAD_BLOCK) {
        const int rows = Rp - b0 < QUAD_BLOCK ? Rp - b0 : QUAD_BLOCK;
        gemm_nn(rows, N, Rp - b0, 1.0f, gram + (size_t)b0 * Rp + b0, Rp, f->yt + (size_t)b0 * N,
                N, 0.0f, z + (size_t)b0 * N, N);
    }
    for (int n = 0; n < N; n++) cross[n] = quad[n] = 0.0f;
    accumulate_products(cross, f->yt, cov, Rp, N);
    accumulate_products(quad, f->yt, z, Rp, N);
    // rho (N) in quad; then r' = rho r (f->r is set: the caller made it all ones).
    for (int n = 0; n < N; n++) {
        const float r = f->r[n];
        float var = r * r * blk->var[n] + 2.0f * r * cross[n] / (float)D + quad[n];
        if (!(var > 0.0f)) var = 0.0f;
        quad[n] = 1.0f / sqrtf(var + DECODER_LN_EPS);
    }
    const float *rho = quad;
    scale_by_rows(f->yt, rho, Rp, N);
    float *mean_row = f->yt + (size_t)Rp * N, *ones = mean_row + N;
    for (int n = 0; n < N; n++) {
        mean_row[n] = -rho[n] * f->r[n] * blk->mean[n];
        ones[n] = 1.0f;
        f->r[n] *= rho[n];
    }
    for (int j = 0; j < Rp; j++) {
        float *row = f->u + (size_t)j * D;
        for (int c = 0; c < D; c++) row[c] *= norm->weight[c];
    }
    memcpy(f->u + (size_t)Rp * D, norm->weight, sizeof(float) * D);
    memcpy(f->u + (size_t)(Rp + 1) * D, norm->bias, sizeof(float) * D);
    f->rank = Rp + 2;
}

// The token side of block l up to its image-to-token attention, the image
// being f: self-attention, token-to-image attention (block 0's per-image
// products include key_pe, so it takes no pe_k), norm2, MLP; then q_pe =
// queries + query_pe for the image-to-token attention. tokens:
// two_way_tokens_scratch_floats; work: factored_to_image's.
static void factored_block_tokens(float *queries, float *q_pe, float *attn_out, float *tokens,
                                  const float *query_pe, int T, int l, const LowRankBlock *blk,
                                  const HeadSlices *pe_k, const Factored *f,
                                  const MaskDecoderWeights *w, const SamConfig *cfg, float *work) {
    const int D = cfg->prompt_dim;
    const size_t td = (size_t)T * D;
    const TwoWayBlockWeights *b = &w->layers[l];
    two_way_self_attention(queries, query_pe, T, l, w, cfg, tokens);
    add_to(q_pe, queries, query_pe, td);
    factored_to_image(attn_out, q_pe, T, &blk->k, pe_k, blk->v_t, f,
                      &b->cross_attn_token_to_image, cfg->decoder_heads, cfg->attn_internal_dim,
                      work);
    add_inplace(queries, attn_out, td);
    layernorm_rows(queries, queries, b->norm2.weight, b->norm2.bias, T, D, DECODER_LN_EPS);
    two_way_mlp(queries, T, b, cfg, tokens);
    add_to(q_pe, queries, query_pe, td);
}

int lowrank_forward(float *queries, float *u1, const float *query_pe, int n_tokens,
                    const int *out_rows, int n_out_rows, const LowRankImage *img,
                    const LowRankModel *model, const float *upscale_w, const float *upscale_b,
                    const MaskDecoderWeights *w, const SamConfig *cfg, Arena *scratch,
                    SamError *err) {
    const int T = n_tokens, N = cfg->grid * cfg->grid, D = cfg->prompt_dim;
    const int I = cfg->attn_internal_dim, H = cfg->decoder_heads, L = cfg->decoder_depth;
    const int E = 4 * cfg->upscale_dim1;
    LowRankSizes sz;
    lowrank_sizes(&sz, cfg, T);
    const size_t mark = arena_mark(scratch);
    float *r = arena_floats(scratch, sz.r);
    float *yt = arena_floats(scratch, sz.yt);
    float *u = arena_floats(scratch, sz.u);
    float *values = arena_floats(scratch, sz.values);
    float *q_pe = arena_floats(scratch, sz.q_pe);
    float *attn_out = arena_floats(scratch, sz.attn_out);
    float *tokens = arena_floats(scratch, sz.tokens);
    float *work = arena_floats(scratch, sz.work);
    if (!r || !yt || !u || !values || !q_pe || !attn_out || !tokens || !work) {
        arena_reset(scratch, mark);
        return sam_error(err, "decoder: scratch arena exhausted (%zu floats needed)",
                         lowrank_forward_scratch_floats(cfg, T));
    }
    // r stays NULL (all ones) until the first norm.
    Factored f = {NULL, yt, u, 0, N, D};
    for (int l = 0; l < L; l++) {
        const TwoWayBlockWeights *b = &w->layers[l];
        const LowRankBlock *blk = &img->block[l];
        factored_block_tokens(queries, q_pe, attn_out, tokens, query_pe, T, l, blk,
                              l ? &model->pe_k[l] : NULL, &f, w, cfg, work);
        factored_from_image(&f, values + (size_t)l * T * I, q_pe, queries, T, blk,
                            l ? &model->pe_q[l] : NULL, &b->cross_attn_image_to_token, H, I,
                            work);
        if (!f.r) {
            f.r = r;
            for (int n = 0; n < N; n++) r[n] = 1.0f;
        }
        factored_norm(&f, T, l, blk, values, &b->norm4, H, I, work);
    }

    // Final attention from the requested token rows to the image, residual,
    // norm_final_attn (two_way_transformer.c gathers the rows the same way).
    const int T_out = out_rows && n_out_rows > 0 && n_out_rows < T ? n_out_rows : T;
    for (int j = 0; j < T_out; j++) {
        const int row = T_out < T ? out_rows[j] : j;
        add_to(q_pe + (size_t)j * D, queries + (size_t)row * D, query_pe + (size_t)row * D,
               (size_t)D);
    }
    factored_to_image(attn_out, q_pe, T_out, &img->block[L].k, &model->pe_k[L], img->block[L].v_t,
                      &f, &w->final_attn_token_to_image, H, I, work);
    for (int j = 0; j < T_out; j++) {
        float *row = queries + (size_t)(T_out < T ? out_rows[j] : j) * D;
        add_inplace(row, attn_out + (size_t)j * D, (size_t)D);
        layernorm_rows(row, row, w->norm_final_attn.weight, w->norm_final_attn.bias, 1, D,
                       DECODER_LN_EPS);
    }

    // u1 = W1 keys_L^T + b1 = (W1 A_L^T) diag(r) + (W1 U_L^T) Yt + b1.
    float *uw = work;  // (R, E) U_L W1^T
    gemm_nt(f.rank, E, D, 1.0f, f.u, D, upscale_w, D, 0.0f, uw, E);
    for (int j = 0; j < E; j++) {
        const float *src = img->upscale + (size_t)j * N;
        float *dst = u1 + (size_t)j * N;
        if (f.r)
            for (int n = 0; n < N; n++) dst[n] = f.r[n] * src[n] + upscale_b[j];
        else
            for (int n = 0; n < N; n++) dst[n] = src[n] + upscale_b[j];
    }
    gemm_tn(E, N, f.rank, 1.0f, uw, E, f.yt, N, 1.0f, u1, N);
    arena_reset(scratch, mark);
    return 0;
}

// ---------------------------------------------------------------------------
// Block 0 for formed tokens

// The buffers of lowrank_first_block, in allocation order.
typedef struct FirstBlockSizes {
    size_t q_pe, attn_out, tokens, values, probs, work;
} FirstBlockSizes;

static void first_block_sizes(FirstBlockSizes *s, const SamConfig *cfg, int T) {
    const size_t N = (size_t)cfg->grid * cfg->grid, D = (size_t)cfg->prompt_dim;
    const size_t I = (size_t)cfg->attn_internal_dim, HT = (size_t)cfg->decoder_heads * T;
    s->q_pe = s->attn_out = (size_t)T * D;
    s->tokens = two_way_tokens_scratch_floats(cfg, T);
    s->values = (size_t)T * I;
    s->probs = HT * N;
    // factored_to_image with rank 0: q, o, the scores; the image-to-token
    // side: g, then k, e and the folded vectors.
    s->work = max_size(2 * T * I + HT * N, HT * D + T * I + HT + HT * D);
}

size_t lowrank_first_block_scratch_floats(const SamConfig *cfg, int n_tokens) {
    FirstBlockSizes s;
    first_block_sizes(&s, cfg, n_tokens);
    return arena_rounded(s.q_pe) + arena_rounded(s.attn_out) + arena_rounded(s.tokens) +
           arena_rounded(s.values) + arena_rounded(s.probs) + arena_rounded(s.work);
}

int lowrank_first_block(float *queries, float *keys, const float *query_pe, int n_tokens,
                        const LowRankImage *img, const MaskDecoderWeights *w,
                        const SamConfig *cfg, Arena *scratch, SamError *err) {
    const int T = n_tokens, N = cfg->grid * cfg->grid, D = cfg->prompt_dim;
    const int I = cfg->attn_internal_dim, H = cfg->decoder_heads, HT = H * T;
    const TwoWayBlockWeights *b = &w->layers[0];
    const LowRankBlock *blk = &img->block[0];
    FirstBlockSizes sz;
    first_block_sizes(&sz, cfg, T);
    const size_t mark = arena_mark(scratch);
    float *q_pe = arena_floats(scratch, sz.q_pe);
    float *attn_out = arena_floats(scratch, sz.attn_out);
    float *tokens = arena_floats(scratch, sz.tokens);
    float *values = arena_floats(scratch, sz.values);
    float *probs = arena_floats(scratch, sz.probs);
    float *work = arena_floats(scratch, sz.work);
    if (!q_pe || !attn_out || !tokens || !values || !probs || !work) {
        arena_reset(scratch, mark);
        return sam_error(err, "decoder: scratch arena exhausted (%zu floats needed)",
                         lowrank_first_block_scratch_floats(cfg, T));
    }
    // keys_0 itself: r = 1 and no correction.
    const Factored f = {NULL, NULL, NULL, 0, N, D};
    factored_block_tokens(queries, q_pe, attn_out, tokens, query_pe, T, 0, blk, NULL, &f, w, cfg,
                          work);
    // Image-to-token: keys += p^T g, then norm4.
    float *g = work;  // (HT, D)
    image_to_token_attention(probs, g, values, q_pe, queries, T, blk, NULL,
                             &b->cross_attn_image_to_token, &f, H, I, g + (size_t)HT * D);
    gemm_tn(N, D, HT, 1.0f, probs, N, g, D, 1.0f, keys, D);
    layernorm_rows(keys, keys, b->norm4.weight, b->norm4.bias, N, D, DECODER_LN_EPS);
    arena_reset(scratch, mark);
    return 0;
}
