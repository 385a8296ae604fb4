// OpenCL 1.2 is what TapeCL's kernels target (PoCL 3.1 reports OpenCL C 1.2);
// naming it here silences the deprecation warnings of the 1.2 entry points.
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
