// Cache-blocked GEMM driver shared by the SIMD variants (Goto/BLIS loop
// nest). The micro-kernel is ISA-specific; so, optionally, is the
// transposing pack (GemmVariant.pack_rows), else the plain C one below.
//
//   for jc in n step nc:           B block (kc x nc) packed once, lives in L3
//     for pc in k step kc:
//       pack B[pc.., jc..] into nr-wide panels
//       for ic in m step mc:       A block (mc x kc) packed, lives in L2
//         pack A[ic.., pc..] into mr-tall panels
//         for jr in nc step nr:    one B panel (kc x nr), reused from L1/L2
//           for ir in mc step mr:  micro-kernel: mr x nr tile of C
//
// As implemented, B is packed whole first and the loops over pc, jr and ir
// run inside a task per (ic, jc) block (or a range of its jr panels), so the
// tasks can run on several threads (block_task), each packing A into its own
// buffer. The k blocks of one C element still come in order.
// The first k block applies beta to C; later ones accumulate (beta = 1).
// Ragged tiles at the m and n edges are computed into a full temporary tile
// (the packed panels are zero-padded) and combined with C element by element.
#include <stdint.h>
#include <stdlib.h>

#include "../common/thread_pool.h"
#include "gemm_internal.h"
#include "kernels.h"

#define GEMM_ALIGN 64

static int imin(int a, int b) { return a < b ? a : b; }
static int round_up(int x, int to) { return (x + to - 1) / to * to; }

// Splits `total` into ceil(total / block) near-equal blocks rounded up to a
// multiple of `multiple`, so that e.g. k = 300 with kc = 256 gives 150 + 150
// rather than 256 + 44.
static int balanced_block(int total, int block, int multiple) {
    int blocks = (total + block - 1) / block;
    return round_up((total + blocks - 1) / blocks, multiple);
}

// Packs rows [0, rows) x steps [0, kb) of a row-major matrix (stride ld) into
// panels of `width` rows: dst[q*width*kb + p*width + i] = src[(q*width + i)*ld + p].
// Rows past `rows` are zero. Used for A, and for B in gemm_nt (B^T's columns
// are B's rows).
static void pack_rows(float *dst, const float *src, int ld, int rows, int kb, int width) {
    enum { STEP = 16 };  // one 64-byte line of each source row at a time
    for (int i0 = 0; i0 < rows; i0 += width) {
        const int live = imin(width, rows - i0);
        const float *s = src + (size_t)i0 * ld;
        // Blocks of STEP k steps: each source line is consumed as soon as it is
        // loaded, so power-of-two strides (e.g. 4096-wide attention scores,
        // whose rows all map to the same L1 set) do not thrash the cache; the
        // width x STEP destination block stays in L1.
        for (int p0 = 0; p0 < kb; p0 += STEP) {
            const int steps = imin(STEP, kb - p0);
            float *d = dst + (size_t)p0 * width;
            for (int i = 0; i < live; i++) {
                const float *si = s + (size_t)i * ld + p0;
                for (int p = 0; p < steps; p++) d[(size_t)p * width + i] = si[p];
            }
            for (int i = live; i < width; i++)
                for (int p = 0; p < steps; p++) d[(size_t)p * width + i] = 0.0f;
        }
        dst += (size_t)width * kb;
    }
}

// One full panel of pack_cols with the width known at compile time, so that
// the compiler turns each k step's copy into a few vector moves (the
// variable-width loop stayed scalar: a fifth of the decoder's time in V8
// went to packing).
#define PACK_FULL_PANEL(W)                                                                \
    static void pack_panel_##W(float *dst, const float *src, int ld, int kb) {            \
        for (int p = 0; p < kb; p++)                                                      \
            for (int j = 0; j < (W); j++) dst[(size_t)p * (W) + j] = src[(size_t)p * ld + j]; \
    }
PACK_FULL_PANEL(6)
PACK_FULL_PANEL(8)
PACK_FULL_PANEL(14)
PACK_FULL_PANEL(16)
PACK_FULL_PANEL(32)

// Packs steps [0, kb) x columns [0, cols) of a row-major (k, n) matrix into
// panels of `width` columns: dst[q*width*kb + p*width + j] = src[p*ld + q*width + j].
// Columns past `cols` are zero. Used for B in gemm_nn and A in gemm_tn.
static void pack_cols(float *dst, const float *src, int ld, int cols, int kb, int width) {
    for (int j0 = 0; j0 < cols; j0 += width) {
        const int live = imin(width, cols - j0);
        const float *s0 = src + j0;
        if (live == width) {
            switch (width) {
            case 6: pack_panel_6(dst, s0, ld, kb); dst += (size_t)width * kb; continue;
            case 8: pack_panel_8(dst, s0, ld, kb); dst += (size_t)width * kb; continue;
            case 14: pack_panel_14(dst, s0, ld, kb); dst += (size_t)width * kb; continue;
            case 16: pack_panel_16(dst, s0, ld, kb); dst += (size_t)width * kb; continue;
            case 32: pack_panel_32(dst, s0, ld, kb); dst += (size_t)width * kb; continue;
            default: break;
            }
        }
        for (int p = 0; p < kb; p++) {
            const float *s = s0 + (size_t)p * ld;
            float *d = dst + (size_t)p * width;
            for (int j = 0; j < live; j++) d[j] = s[j];
            for (int j = live; j < width; j++) d[j] = 0.0f;
        }
        dst += (size_t)width * kb;
    }
}

// C = beta * C for k == 0 (the product is empty); beta == 0 overwrites.
static void scale_c(int m, int n, float beta, float *c, int ldc) {
    for (int i = 0; i < m; i++) {
        float *ci = c + (size_t)i * ldc;
        for (int j = 0; j < n; j++) ci[j] = beta == 0.0f ? 0.0f : beta * ci[j];
    }
}

// The blocks of C are independent: task t computes rows [ic, ic + mc) x
// columns [jc + jr0, jc + jr0 + jr_step) over every k block in order, packing
// A into its thread's buffer, against B packed whole beforehand (the
// gemm_blocked_pack_b layout). Each C element gets the same operations in
// the same order whatever the split, so results do not depend on the threads.
// One job per product keeps the workers' wake-up (tens of microseconds on a
// sleeping condition variable) small against the work.
typedef struct BlockJob {
    const GemmVariant *v;
    GemmPackRowsFn pack_rows_fn;
    int trans_a;
    const float *a;
    int lda;
    const float *b_pack;  // all of B, packed
    float *c;
    int ldc;
    float alpha, beta;
    int m, n, k, mc, nc, kc;
    int ic_blocks, jr_step, jr_chunks;  // tasks: ic_blocks * jc blocks * jr_chunks
    float *work;         // per thread: A block, then edge tile
    size_t work_floats;  // per thread, a multiple of GEMM_ALIGN bytes
    size_t a_floats;     // A block part of it, likewise
    const float *bias;   // epilogue (gemm_epilogue) after the last k block
    int gelu;
} BlockJob;

static void block_task(void *ctx, int task, int thread) {
    const BlockJob *s = ctx;
    const GemmVariant *v = s->v;
    const int mr = v->mr, nr = v->nr, ldc = s->ldc, k = s->k;
    const int chunk = task % s->jr_chunks, rest = task / s->jr_chunks;
    const int ic = rest % s->ic_blocks * s->mc, jc = rest / s->ic_blocks * s->nc;
    const int mb = imin(s->mc, s->m - ic), nb = imin(s->nc, s->n - jc);
    const int jr0 = chunk * s->jr_step, jr1 = imin(jr0 + s->jr_step, nb);
    if (jr0 >= nb) return;  // the last, narrower n block has fewer chunks
    const int panel_cols = round_up(nb, nr);
    const float *b_block = s->b_pack + (size_t)jc * k;  // earlier n blocks: nc * k each
    float *a_pack = s->work + (size_t)thread * s->work_floats;
    float *tile = a_pack + s->a_floats;
    const float alpha = s->alpha;
    for (int pc = 0; pc < k; pc += s->kc) {
        const int kb = imin(s->kc, k - pc);
        const float beta_k = pc == 0 ? s->beta : 1.0f;
        const int epilogue = pc + kb == k && (s->bias || s->gelu);
        if (s->trans_a)
            pack_cols(a_pack, s->a + (size_t)pc * s->lda + ic, s->lda, mb, kb, mr);
        else
            s->pack_rows_fn(a_pack, s->a + (size_t)ic * s->lda + pc, s->lda, mb, kb, mr);
        const float *b_pack = b_block + (size_t)panel_cols * pc;
        for (int jr = jr0; jr < jr1; jr += nr) {
            const int nt = imin(nr, nb - jr);
            const float *bp = b_pack + (size_t)jr * kb;
            const float *bias = s->bias ? s->bias + jc + jr : NULL;  // this column's, for the epilogue
            if (nt == nr && v->column_kernel) {
                float *ct = s->c + (size_t)ic * ldc + jc + jr;
                v->column_kernel(mb, kb, a_pack, bp, ct, ldc, alpha, beta_k);
                if (epilogue) gemm_epilogue(ct, ldc, mb, nr, bias, s->gelu);
                continue;
            }
            for (int ir = 0; ir < mb; ir += mr) {
                const int mt = imin(mr, mb - ir);
                const float *ap = a_pack + (size_t)ir * kb;
                float *ct = s->c + (size_t)(ic + ir) * ldc + jc + jr;
                if (mt == mr && nt == nr) {
                    v->kernel(kb, ap, bp, ct, ldc, alpha, beta_k);
                } else {
                    v->kernel(kb, ap, bp, tile, nr, 1.0f, 0.0f);
                    for (int i = 0; i < mt; i++) {
                        float *ci = ct + (size_t)i * ldc;
                        const float *ti = tile + (size_t)i * nr;
                        for (int j = 0; j < nt; j++)
                            ci[j] = alpha * ti[j] + (beta_k == 0.0f ? 0.0f : beta_k * ci[j]);
                    }
                }
                if (epilogue) gemm_epilogue(ct, ldc, mt, nt, bias, s->gelu);
            }
        }
    }
}

// Products below this many multiply-adds run on the caller alone: waking
// the workers costs more than they would save.
#define GEMM_PARALLEL_MIN_MACS (1 << 21)

// trans_a: A is stored (k, m) (gemm_tn); its mr-wide panels are then plain
// copies of row segments (pack_cols), as B's are in gemm_nn.
// b_packed: B already packed (gemm_blocked_pack_b); b, ldb and trans_b are
// then unused.
// The blocks of C are spread over the threads of the pool bound to the
// caller (thread_pool_current), if any.
// bias, gelu: the epilogue (gemm_nt_epilogue), on each tile after its last k
// block; 0 and NULL for none.
static void gemm_blocked(const GemmVariant *v, int trans_a, int trans_b, int m, int n, int k,
                         float alpha, const float *a, int lda, const float *b, int ldb,
                         const float *b_packed, float beta, float *c, int ldc, const float *bias,
                         int gelu) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        scale_c(m, n, beta, c, ldc);
        gemm_epilogue(c, ldc, m, n, bias, gelu);
        return;
    }
    const int mr = v->mr, nr = v->nr;
    const GemmPackRowsFn pack_rows_fn = v->pack_rows ? v->pack_rows : pack_rows;
    const int kc = balanced_block(k, v->kc, 1);
    const int mc = balanced_block(m, v->mc, mr);
    const int nc = balanced_block(n, v->nc, nr);
    ThreadPool *pool = (double)m * n * k >= GEMM_PARALLEL_MIN_MACS ? thread_pool_current() : NULL;
    const int threads = thread_pool_threads(pool);

    // One allocation per call: all of B packed, and per thread an A block
    // and an edge tile. Sized to this call's shape, so small GEMMs take
    // little; no state survives the call.
    const size_t pad = GEMM_ALIGN / sizeof(float);
    const size_t a_floats = ((size_t)mc * kc + pad - 1) / pad * pad;
    const size_t b_floats = b_packed ? 0 : (gemm_blocked_packed_b_floats(v, n, k) + pad - 1) / pad * pad;
    const size_t work_floats = a_floats + ((size_t)mr * nr + pad - 1) / pad * pad;
    const size_t bytes = (b_floats + work_floats * threads + pad) * sizeof(float);  // + align
    void *raw = malloc(bytes);
    if (!raw) {
        // Out of memory for packing: the reference needs none.
        if (b_packed)  // B is only available packed: unpack-free fallback below
            goto packed_oom;
        if (trans_a)
            gemm_tn_scalar(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        else if (trans_b)
            gemm_nt_scalar(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        else
            gemm_nn_scalar(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        gemm_epilogue(c, ldc, m, n, bias, gelu);
        return;
    }
    float *b_pack = (float *)(((uintptr_t)raw + GEMM_ALIGN - 1) & ~(uintptr_t)(GEMM_ALIGN - 1));
    if (!b_packed) {
        gemm_blocked_pack_b(v, b_pack, b, ldb, n, k, trans_b);
        b_packed = b_pack;
    }
    // Split the B panels of an n block too when there are too few A blocks
    // to give every thread several tasks (e.g. the neck's 256-row products).
    const int ic_blocks = (m + mc - 1) / mc, jc_blocks = (n + nc - 1) / nc;
    const int panels = (imin(nc, n) + nr - 1) / nr;
    int jr_chunks = threads == 1 ? 1 : (4 * threads + ic_blocks * jc_blocks - 1) / (ic_blocks * jc_blocks);
    if (jr_chunks > panels) jr_chunks = panels;
    const int jr_step = (panels + jr_chunks - 1) / jr_chunks * nr;
    BlockJob s = {.v = v, .pack_rows_fn = pack_rows_fn, .trans_a = trans_a, .a = a, .lda = lda,
                  .b_pack = b_packed, .c = c, .ldc = ldc, .alpha = alpha, .beta = beta,
                  .m = m, .n = n, .k = k, .mc = mc, .nc = nc, .kc = kc,
                  .ic_blocks = ic_blocks, .jr_step = jr_step,
                  .jr_chunks = (imin(nc, n) + jr_step - 1) / jr_step,
                  .work = b_pack + b_floats, .work_floats = work_floats, .a_floats = a_floats,
                  .bias = bias, .gelu = gelu};
    thread_pool_run(pool, ic_blocks * jc_blocks * s.jr_chunks, block_task, &s);
    free(raw);
    return;
packed_oom:
    // No memory for the A block: C from the packed panels one element at a
    // time (slow, but correct and allocation-free).
    {
        const float *blk = b_packed;
        for (int jc = 0; jc < n; jc += nc) {
            const int nb = imin(nc, n - jc);
            for (int pc = 0; pc < k; pc += kc) {
                const int kb = imin(kc, k - pc);
                for (int i = 0; i < m; i++) {
                    for (int j = 0; j < nb; j++) {
                        const float *panel = blk + (size_t)(j / nr) * nr * kb + j % nr;
                        float sum = 0.0f;
                        for (int p = 0; p < kb; p++)
                            sum += a[(size_t)i * lda + pc + p] * panel[(size_t)p * nr];
                        float *cij = c + (size_t)i * ldc + jc + j;
                        const float beta_k = pc == 0 ? beta : 1.0f;
                        *cij = alpha * sum + (beta_k == 0.0f ? 0.0f : beta_k * *cij);
                    }
                }
                blk += (size_t)round_up(nb, nr) * kb;
            }
        }
        gemm_epilogue(c, ldc, m, n, bias, gelu);
    }
}

size_t gemm_blocked_packed_b_floats(const GemmVariant *v, int n, int k) {
    if (n <= 0 || k <= 0) return 0;
    const int kc = balanced_block(k, v->kc, 1), nc = balanced_block(n, v->nc, v->nr);
    size_t total = 0;
    for (int jc = 0; jc < n; jc += nc)
        for (int pc = 0; pc < k; pc += kc)
            total += (size_t)round_up(imin(nc, n - jc), v->nr) * imin(kc, k - pc);
    return total;
}

void gemm_blocked_pack_b(const GemmVariant *v, float *dst, const float *b, int ldb, int n, int k,
                         int trans_b) {
    if (n <= 0 || k <= 0) return;
    const GemmPackRowsFn pack_rows_fn = v->pack_rows ? v->pack_rows : pack_rows;
    const int kc = balanced_block(k, v->kc, 1), nc = balanced_block(n, v->nc, v->nr);
    for (int jc = 0; jc < n; jc += nc) {
        const int nb = imin(nc, n - jc);
        for (int pc = 0; pc < k; pc += kc) {
            const int kb = imin(kc, k - pc);
            if (trans_b)
                pack_rows_fn(dst, b + (size_t)jc * ldb + pc, ldb, nb, kb, v->nr);
            else
                pack_cols(dst, b + (size_t)pc * ldb + jc, ldb, nb, kb, v->nr);
            dst += (size_t)round_up(nb, v->nr) * kb;
        }
    }
}

void gemm_blocked_pack_b_sum(const GemmVariant *v, float *dst, const float *x, const float *y,
                             int ld, int n, int k, float *tmp) {
    if (n <= 0 || k <= 0) return;
    const GemmPackRowsFn pack_rows_fn = v->pack_rows ? v->pack_rows : pack_rows;
    const int nr = v->nr, kc = balanced_block(k, v->kc, 1), nc = balanced_block(n, v->nc, nr);
    for (int jc = 0; jc < n; jc += nc) {
        const int nb = imin(nc, n - jc);
        for (int pc = 0; pc < k; pc += kc) {
            const int kb = imin(kc, k - pc);
            // One nr-row panel at a time: its rows of x + y into tmp (kept in
            // cache), then the transposing pack of tmp.
            for (int jr = 0; jr < nb; jr += nr) {
                const int live = imin(nr, nb - jr);
                for (int i = 0; i < live; i++) {
                    const size_t at = (size_t)(jc + jr + i) * ld + pc;
                    float *t = tmp + (size_t)i * kb;
                    for (int p = 0; p < kb; p++) t[p] = x[at + p] + y[at + p];
                }
                pack_rows_fn(dst, tmp, kb, live, kb, nr);
                dst += (size_t)nr * kb;
            }
        }
    }
}

void gemm_blocked_packed(const GemmVariant *v, int m, int n, int k, float alpha, const float *a,
                         int lda, const float *b_packed, float beta, float *c, int ldc) {
    gemm_blocked(v, 0, 0, m, n, k, alpha, a, lda, NULL, 0, b_packed, beta, c, ldc, NULL, 0);
}

void gemm_blocked_nt(const GemmVariant *v, int m, int n, int k, float alpha, const float *a,
                     int lda, const float *b, int ldb, float beta, float *c, int ldc,
                     const float *bias, int gelu) {
    gemm_blocked(v, 0, 1, m, n, k, alpha, a, lda, b, ldb, NULL, beta, c, ldc, bias, gelu);
}

void gemm_blocked_nn(const GemmVariant *v, int m, int n, int k, float alpha, const float *a,
                     int lda, const float *b, int ldb, float beta, float *c, int ldc) {
    gemm_blocked(v, 0, 0, m, n, k, alpha, a, lda, b, ldb, NULL, beta, c, ldc, NULL, 0);
}

void gemm_blocked_tn(const GemmVariant *v, int m, int n, int k, float alpha, const float *a,
                     int lda, const float *b, int ldb, float beta, float *c, int ldc) {
    gemm_blocked(v, 1, 0, m, n, k, alpha, a, lda, b, ldb, NULL, beta, c, ldc, NULL, 0);
}
