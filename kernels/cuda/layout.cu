#include "kernels/layout.cuh"
