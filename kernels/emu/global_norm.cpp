#include "kernels/global_norm.cuh"
