#include "kernels/cross_entropy.cuh"
