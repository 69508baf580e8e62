// cuda_probe.cu: placeholder translation unit until the kernels land.
#include <cuda_runtime.h>
extern "C" int rotary_cuda_probe_placeholder(void) { return 0; }
