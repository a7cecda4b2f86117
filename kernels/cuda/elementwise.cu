#include "kernels/elementwise.cuh"
