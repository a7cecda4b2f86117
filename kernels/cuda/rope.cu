#include "kernels/rope.cuh"
