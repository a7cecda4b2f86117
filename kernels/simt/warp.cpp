// Warp shuffles, votes and __syncwarp: a barrier over the lanes of `mask` only.
//
// Lanes arrive one by one; each is checked against the lanes already waiting (same operation, same
// mask, mask names only live lanes), and the last lane of the mask computes every lane's result
// from the values the lanes brought, so no lane can see a value from a later operation.
#include <bit>

#include "error.h"
#include "executor.h"
#include "sanitizer.h"

namespace simt::detail {

namespace {

const char* op_name(WarpOp op) {
  switch (op) {
    case WarpOp::shfl:
      return "__shfl_sync";
    case WarpOp::shfl_up:
      return "__shfl_up_sync";
    case WarpOp::shfl_down:
      return "__shfl_down_sync";
    case WarpOp::shfl_xor:
      return "__shfl_xor_sync";
    case WarpOp::ballot:
      return "__ballot_sync";
    case WarpOp::any:
      return "__any_sync";
    case WarpOp::all:
      return "__all_sync";
    case WarpOp::syncwarp:
      return "__syncwarp";
    case WarpOp::mma:
      return "mma_m16n8k16_bf16";
  }
  return "?";
}

bool is_shuffle(WarpOp op) {
  return op == WarpOp::shfl || op == WarpOp::shfl_up || op == WarpOp::shfl_down ||
         op == WarpOp::shfl_xor;
}

// The source lane of PTX shfl.sync for a CUDA __shfl*_sync call. CUDA passes c = ((32 - width)
// << 8) | 0x1f, without the 0x1f for shfl.up; b is the lane, delta or lane mask, of which PTX
// reads the low five bits. A source outside the lane's segment means "keep your own value".
unsigned source_lane(WarpOp op, unsigned lane, int b, int width) {
  const unsigned segmask = static_cast<unsigned>(32 - width) & 0x1fu;
  const unsigned clamp = op == WarpOp::shfl_up ? 0u : 0x1fu;
  const unsigned bval = static_cast<unsigned>(b) & 0x1fu;
  const int max_lane = static_cast<int>((lane & segmask) | (clamp & ~segmask));
  const int min_lane = static_cast<int>(lane & segmask);
  int j = 0;
  bool in_range = false;
  switch (op) {
    case WarpOp::shfl_up:
      j = static_cast<int>(lane) - static_cast<int>(bval);
      in_range = j >= max_lane;
      break;
    case WarpOp::shfl_down:
      j = static_cast<int>(lane + bval);
      in_range = j <= max_lane;
      break;
    case WarpOp::shfl_xor:
      j = static_cast<int>(lane ^ bval);
      in_range = j <= max_lane;
      break;
    default:
      j = min_lane | static_cast<int>(bval & ~segmask);
      in_range = j <= max_lane;
      break;
  }
  return in_range ? static_cast<unsigned>(j) : lane;
}

std::string lanes(unsigned bits) {
  std::string text;
  for (; bits != 0; bits &= bits - 1) {
    text += concat(text.empty() ? "" : ",", std::countr_zero(bits));
  }
  return text;
}

std::string describe(const Thread& t) {
  return concat("lane ", t.lane(), " in ", t.waits_in, "(mask ", format_mask(t.mask), ") at ",
                format_site(t.waits_at));
}

float bf16_bits_to_float(std::uint32_t bits16) {
  return std::bit_cast<float>((bits16 & 0xffffu) << 16);
}

// D = A·B + C over the fragments the 32 lanes brought (layout: simt::mma_m16n8k16_bf16). Every
// operand is gathered before any result is written, so d may alias c.
void complete_mma(Executor& ex, unsigned warp) {
  const unsigned base = warp * kWarpSize;
  float a[16][16], b[16][8], c[16][8];
  for (unsigned lane = 0; lane < kWarpSize; ++lane) {
    const auto* op = reinterpret_cast<const MmaOperands*>(ex.thread(base + lane).value);
    const unsigned g = lane / 4, t = lane % 4;
    for (unsigned i = 0; i < 4; ++i) {
      const unsigned row = g + 8 * (i % 2), col = 2 * t + 8 * (i / 2);
      a[row][col] = bf16_bits_to_float(op->a[i]);
      a[row][col + 1] = bf16_bits_to_float(op->a[i] >> 16);
      c[g + 8 * (i / 2)][2 * t + i % 2] = op->c[i];
    }
    for (unsigned i = 0; i < 2; ++i) {
      b[2 * t + 8 * i][g] = bf16_bits_to_float(op->b[i]);
      b[2 * t + 8 * i + 1][g] = bf16_bits_to_float(op->b[i] >> 16);
    }
  }
  for (unsigned lane = 0; lane < kWarpSize; ++lane) {
    const auto* op = reinterpret_cast<const MmaOperands*>(ex.thread(base + lane).value);
    const unsigned g = lane / 4, t = lane % 4;
    for (unsigned i = 0; i < 4; ++i) {
      const unsigned row = g + 8 * (i / 2), col = 2 * t + i % 2;
      float sum = c[row][col];
      for (unsigned k = 0; k < 16; ++k) sum += a[row][k] * b[k][col];
      op->d[i] = sum;
    }
  }
}

// Called by the last lane of `mask` to arrive: every lane's result, then everyone is ready.
void complete(Executor& ex, unsigned warp, unsigned mask) {
  const unsigned base = warp * kWarpSize;
  if (ex.thread(base + std::countr_zero(mask)).op == WarpOp::mma) complete_mma(ex, warp);
  unsigned ballot = 0;
  unsigned parities = 0;
  for (unsigned m = mask; m != 0; m &= m - 1) {
    const unsigned lane = std::countr_zero(m);
    const Thread& t = ex.thread(base + lane);
    if (t.value != 0) ballot |= 1u << lane;
    parities |= (t.syncwarps & 1u) << lane;
  }
  for (unsigned m = mask; m != 0; m &= m - 1) {
    const unsigned lane = std::countr_zero(m);
    Thread& t = ex.thread(base + lane);
    switch (t.op) {
      case WarpOp::ballot:
        t.result = ballot;
        break;
      case WarpOp::any:
        t.result = ballot != 0;
        break;
      case WarpOp::all:
        t.result = ballot == mask;
        break;
      case WarpOp::syncwarp:
        t.syncwarp_parities = parities;
        break;
      case WarpOp::mma:
        break;
      default: {
        const unsigned src = source_lane(t.op, lane, t.lane_arg, t.width);
        // Reading a lane outside the mask is undefined in PTX: give all-ones bits.
        t.result = (mask >> src) & 1u ? ex.thread(base + src).value : ~std::uint64_t{0};
        break;
      }
    }
    t.state = ThreadState::ready;
  }
  ex.block().warps[warp].waiting &= ~mask;
}

void check_arrival(Executor& ex, Thread& self, WarpOp op, unsigned mask, int width,
                   const std::source_location& where) {
  const Warp& w = ex.block().warps[self.warp()];
  const auto call = [&] {
    return concat(op_name(op), "(mask ", format_mask(mask), ") at ", format_site(where));
  };
  if (is_shuffle(op) && (width < 1 || width > 32 || !std::has_single_bit(unsigned(width)))) {
    ex.fail(self, concat(call(), ": width ", width, " is not a power of two in [1, 32]"));
  }
  if (op == WarpOp::mma && mask != 0xffffffffu) {
    ex.fail(self,
            concat(call(), ": needs all 32 lanes of the warp, but warp ", self.warp(),
                   " of a block of ", ex.block().size, " threads has lanes ", lanes(w.present)));
  }
  if (((mask >> self.lane()) & 1u) == 0) {
    ex.fail(self, concat(call(), ": the mask does not include the calling lane ", self.lane()));
  }
  if (const unsigned missing = mask & ~w.present) {
    ex.fail(self, concat(call(), ": the mask names lanes ", lanes(missing), " that do not exist (",
                         "warp ", self.warp(), " of a block of ", ex.block().size,
                         " threads has lanes ", lanes(w.present), ")"));
  }
  if (const unsigned gone = mask & w.exited) {
    ex.fail(self, concat(call(), ": the mask names lanes ", lanes(gone), " that have exited"));
  }
  for (unsigned m = w.waiting; m != 0; m &= m - 1) {
    const Thread& other = ex.thread(self.warp() * kWarpSize + std::countr_zero(m));
    const bool overlap = ((mask >> other.lane()) & 1u) || ((other.mask >> self.lane()) & 1u);
    if (overlap && (other.mask != mask || other.op != op)) {
      ex.fail(self,
              concat("lanes disagree: lane ", self.lane(), " in ", call(), ", ", describe(other)));
    }
  }
}

}  // namespace

std::uint64_t warp_collective(WarpOp op, unsigned mask, std::uint64_t value, int lane_arg,
                              int width, const std::source_location& where) {
  Executor& ex = Executor::instance();
  Thread& self = ex.current();
  const bool sync = op == WarpOp::syncwarp;
  if (sync) san::release(&self.syncwarp_token[self.syncwarps & 1u]);
  std::uint64_t result = 0;
  unsigned parities = 0;
  {
    san::IgnoreScope ignore;
    check_arrival(ex, self, op, mask, width, where);
    self.op = op;
    self.mask = mask;
    self.value = value;
    self.lane_arg = lane_arg;
    self.width = width;
    self.state = ThreadState::waiting;
    Warp& w = ex.block().warps[self.warp()];
    w.waiting |= 1u << self.lane();
    if ((w.waiting & mask) == mask) complete(ex, self.warp(), mask);
    ex.wait(self, op_name(op), where);
    result = self.result;
    parities = self.syncwarp_parities;
    if (sync) ++self.syncwarps;
  }
  if (sync) {
    const unsigned base = self.warp() * kWarpSize;
    for (unsigned m = mask; m != 0; m &= m - 1) {
      const unsigned lane = std::countr_zero(m);
      san::acquire(&ex.thread(base + lane).syncwarp_token[(parities >> lane) & 1u]);
    }
  }
  return result;
}

void warp_mma(const MmaOperands& operands, const std::source_location& where) {
  warp_collective(WarpOp::mma,
                  Executor::instance().block().warps[Executor::instance().current().warp()].present,
                  reinterpret_cast<std::uint64_t>(&operands), 0, kWarpSize, where);
}

}  // namespace simt::detail
