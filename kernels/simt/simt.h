// The SIMT emulator: CUDA kernels compiled by g++ and run on the CPU with CUDA's semantics, one
// fiber per CUDA thread (design: docs/SIMT.md). Kernels include kernels/portable.h.
#pragma once

#include "keywords.h"

#include "atomics.h"
#include "context.h"
#include "collectives.h"
#include "error.h"
#include "intrinsics.h"
#include "launch.h"
#include "schedule.h"
