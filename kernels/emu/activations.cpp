#include "kernels/activations.cuh"
