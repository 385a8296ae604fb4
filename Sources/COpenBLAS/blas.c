#include "COpenBLAS.h"

#include <dlfcn.h>
#include <stdio.h>

// CBLAS's enum values (cblas.h): row-major 101, no transpose 111, transpose 112.
enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };

typedef char *(*string_fn)(void);
typedef void (*threads_fn)(int);
typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *, int, float, float *,
                         int);
typedef void (*dgemm_fn)(int, int, int, int, int, int, double, const double *, int, const double *, int, double,
                         double *, int);

static void *library;
static string_fn corename, config;
static threads_fn set_num_threads;
static sgemm_fn sgemm;
static dgemm_fn dgemm;

int tapecl_blas_open(char *error, size_t error_size) {
    library = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        snprintf(error, error_size, "%s", dlerror());
        return -1;
    }
    corename = (string_fn)dlsym(library, "openblas_get_corename");
    config = (string_fn)dlsym(library, "openblas_get_config");
    set_num_threads = (threads_fn)dlsym(library, "openblas_set_num_threads");
    sgemm = (sgemm_fn)dlsym(library, "cblas_sgemm");
    dgemm = (dgemm_fn)dlsym(library, "cblas_dgemm");
    if (!corename || !config || !set_num_threads || !sgemm || !dgemm) {
        snprintf(error, error_size, "libopenblas.so.0 lacks cblas_sgemm, cblas_dgemm or openblas_get_corename");
        dlclose(library);
        library = NULL;
        return -1;
    }
    return 0;
}

void tapecl_blas_close(void) {
    if (library) dlclose(library);
    library = NULL;
}

const char *tapecl_blas_corename(void) { return corename(); }
const char *tapecl_blas_config(void) { return config(); }
void tapecl_blas_set_num_threads(int n) { set_num_threads(n); }

void tapecl_sgemm(int ta, int tb, int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c,
                  int ldc) {
    sgemm(ROW_MAJOR, ta ? TRANS : NO_TRANS, tb ? TRANS : NO_TRANS, m, n, k, 1, a, lda, b, ldb, 0, c, ldc);
}

void tapecl_dgemm(int ta, int tb, int m, int n, int k, const double *a, int lda, const double *b, int ldb, double *c,
                  int ldc) {
    dgemm(ROW_MAJOR, ta ? TRANS : NO_TRANS, tb ? TRANS : NO_TRANS, m, n, k, 1, a, lda, b, ldb, 0, c, ldc);
}
