// Relative L2 distance of a C result from a reference, the measure the
// tests of rearranged computations (decoder attention, factored decoder)
// state their float32 tolerances in.
#ifndef SAM_TESTS_REL_L2_H
#define SAM_TESTS_REL_L2_H

#include <math.h>
#include <stddef.h>

// sqrt(sum (a - b)^2 / sum b^2), in double; 0/0 counts as 0.
static double rel_l2(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        const double d = (double)a[i] - b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

#endif
