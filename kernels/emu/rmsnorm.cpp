#include "kernels/rmsnorm.cuh"
