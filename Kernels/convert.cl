// convert.cl — dtype conversion, one program per (source, target) pair: built with -DS=<source type>
// (and -DS_IS_FLOAT) besides -DT, so it is kept apart from elementwise.cl, whose every op would
// otherwise be compiled again for each of the twenty pairs.
#include "common.cl"

#ifdef S  // (tapecl devices --build-kernels builds each family without a source type: nothing here)
// Conversion from element type S (built with -DS=<source type>), as the host converts
// (HostScalars.swift): to bool, x != 0 stored as 0 or 1 (NaN is true); from a float to an
// integer, truncation toward zero wrapping as the host's Int64 conversion does, and 0 for NaN,
// ±inf and |x| >= 9e18 (a plain C conversion of those is undefined, and differs per device).
__kernel void convert(__global const S* restrict xs, __global T* restrict out, const ulong off) {
    const size_t i = get_global_id(0) + off;
    const S x = xs[i];
#if IS_BOOL
    out[i] = x != (S)0 ? (T)1 : (T)0;
#elif S_IS_FLOAT && !IS_FLOAT
    out[i] = isfinite(x) && fabs(x) < (S)9e18 ? (T)(long)x : (T)0;
#else
    out[i] = (T)x;
#endif
}
#endif
