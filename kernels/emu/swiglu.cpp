#include "kernels/swiglu.cuh"
