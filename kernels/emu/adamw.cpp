#include "kernels/adamw.cuh"
