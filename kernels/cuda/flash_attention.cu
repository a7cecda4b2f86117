#include "kernels/flash_attention.cuh"
