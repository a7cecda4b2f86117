#include "kernels/pixel_shuffle.cuh"
