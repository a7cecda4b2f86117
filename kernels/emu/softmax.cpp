#include "kernels/softmax.cuh"
