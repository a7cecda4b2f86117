#include "kernels/gelu.cuh"
