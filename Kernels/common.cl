// common.cl — the shared header: types and helpers shared by every TapeCL kernel family.
//
// Each program is built once per element type with -DT=<type> (float, double, int, char);
// IS_FLOAT is 1 for float and double. Arithmetic is exactly what the host loops do: no fused
// multiply-add unless a kernel asks for one (FP_CONTRACT OFF), correctly rounded / and sqrt
// (the backend passes -cl-fp32-correctly-rounded-divide-sqrt).
#ifndef TAPECL_COMMON_H
#define TAPECL_COMMON_H

#ifndef T
#define T float            // element type
#endif
#ifndef IS_FLOAT
#define IS_FLOAT 1
#endif
#ifdef USE_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif
#pragma OPENCL FP_CONTRACT OFF

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define T4 CAT(T, 4)
#define T8 CAT(T, 8)
#define T16 CAT(T, 16)

// Row-major offset of flat index i of `shape` in an operand read with `strides`
// (0 along broadcast axes); rank <= 8, dimensions packed in int8 vectors.
inline size_t strided_offset(size_t i, int rank, int8 shape, int8 strides) {
    int sh[8], st[8];
    vstore8(shape, 0, sh);
    vstore8(strides, 0, st);
    size_t offset = 0;
    for (int d = rank - 1; d >= 0; d--) {
        offset += (i % (size_t)sh[d]) * (size_t)st[d];
        i /= (size_t)sh[d];
    }
    return offset;
}

#endif
