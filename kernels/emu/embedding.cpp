#include "kernels/embedding.cuh"
