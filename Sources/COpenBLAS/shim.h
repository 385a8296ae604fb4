// CBLAS from OpenBLAS (Debian: libopenblas-dev installs <cblas.h> under the multiarch include path).
#include <cblas.h>
