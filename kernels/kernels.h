// Every kernel family's launchers, as host code sees them: minivlm::kernels::gpu::<launcher> runs
// the nvcc build on the GPU, minivlm::kernels::emu::<launcher> the g++ build on the SIMT emulator,
// with the same signatures (kernels/launchers.h). Each family declares its launchers and scratch
// sizes in kernels/<family>.h beside its kernels in kernels/<family>.cuh; the families are listed
// in kernels/CMakeLists.txt. This header needs no CUDA compiler.
#pragma once

#include "kernels/activations.h"
#include "kernels/adamw.h"
#include "kernels/bias.h"
#include "kernels/cross_entropy.h"
#include "kernels/elementwise.h"
#include "kernels/embedding.h"
#include "kernels/flash_attention.h"
#include "kernels/global_norm.h"
#include "kernels/layernorm.h"
#include "kernels/layout.h"
#include "kernels/pixel_shuffle.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/softmax.h"
#include "kernels/swiglu.h"
