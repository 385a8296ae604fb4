// OpenBLAS, loaded at first use (dlopen) rather than linked: OpenBLAS picks its kernels for the
// CPU when it is loaded, reading OPENBLAS_CORETYPE then, so TapeCL can choose that variable before
// loading it (see HostBLAS.swift). Only the calls TapeCL makes are exposed.
#ifndef COPENBLAS_H
#define COPENBLAS_H

#include <stddef.h>

/// Loads libopenblas.so.0 (Debian: libopenblas0). 0 on success; else -1 with the reason in `error`.
int tapecl_blas_open(char *error, size_t error_size);
/// Unloads it, so that the next open initialises it anew (with the environment of that moment).
void tapecl_blas_close(void);
/// OpenBLAS's name for the kernels it runs (e.g. "Haswell", "SkylakeX", "Prescott").
const char *tapecl_blas_corename(void);
/// "OpenBLAS 0.3.21 DYNAMIC_ARCH ...".
const char *tapecl_blas_config(void);
void tapecl_blas_set_num_threads(int n);

/// Row-major C = op(A)·op(B), alpha 1, beta 0 (cblas_sgemm / cblas_dgemm).
void tapecl_sgemm(int transpose_a, int transpose_b, int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                  float *c, int ldc);
void tapecl_dgemm(int transpose_a, int transpose_b, int m, int n, int k, const double *a, int lda, const double *b,
                  int ldb, double *c, int ldc);

#endif
