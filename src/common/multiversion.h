// Plain-C loops (resampling, elementwise passes, LayerNorm statistics) are
// vectorised by the compiler; a native build without -march only gets SSE2
// for them. SAM_MULTIVERSION compiles a function for AVX-512, AVX2 and the
// baseline and picks one at load time (GCC target_clones, an ifunc), so the
// binary still runs on any x86-64. Elsewhere (WASM, other ISAs, other
// compilers) it is empty and the build flags decide.
#ifndef SAM_COMMON_MULTIVERSION_H
#define SAM_COMMON_MULTIVERSION_H

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__EMSCRIPTEN__)
#define SAM_MULTIVERSION __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define SAM_MULTIVERSION
#endif

#endif
