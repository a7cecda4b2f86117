#include "cuda/kernels/layout_kernels.cuh"
