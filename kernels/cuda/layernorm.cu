#include "kernels/layernorm.cuh"
