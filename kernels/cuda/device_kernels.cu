#include "cuda/kernels/device_kernels.cuh"
