#include "kernels/bias.cuh"
