// __syncthreads and its counting variants.
//
// The block's threads gather at one barrier at a time: every arrival is checked against the first
// (same source line, no thread exited before it), and the last arrival releases them all. Each
// released thread then continues in schedule order, not in arrival order.
#include <cstring>

#include "error.h"
#include "executor.h"
#include "sanitizer.h"

namespace simt::detail {

namespace {

bool same_site(const std::source_location& a, const std::source_location& b) {
  return a.line() == b.line() && a.column() == b.column() &&
         (a.file_name() == b.file_name() || std::strcmp(a.file_name(), b.file_name()) == 0);
}

}  // namespace

int block_barrier(const char* name, int predicate, const std::source_location& where) {
  Executor& ex = Executor::instance();
  Thread& self = ex.current();
  Block& b = ex.block();
  const unsigned parity = self.barriers & 1u;
  san::release(&b.barrier_token[parity]);
  int result = 0;
  {
    san::IgnoreScope ignore;
    if (b.exited > 0) {
      const uint3 t = ex.thread(b.first_exited).context.thread_idx;
      ex.fail(self, concat("reached ", name, " (", format_site(where), ") after thread ",
                           format_dim(t.x, t.y, t.z),
                           " exited; every thread of the block must reach it"));
    }
    if (b.arrived == 0) {
      b.first_arrival = self.id;
      b.barrier_name = name;
      b.barrier_at = where;
    } else if (!same_site(where, b.barrier_at) ||
               (name != b.barrier_name && std::strcmp(name, b.barrier_name) != 0)) {
      const uint3 t = ex.thread(b.first_arrival).context.thread_idx;
      ex.fail(self, concat("divergent barrier: waits at ", name, " (", format_site(where),
                           ") while thread ", format_dim(t.x, t.y, t.z), " waits at ",
                           b.barrier_name, " (", format_site(b.barrier_at), ")"));
    }
    self.state = ThreadState::waiting;
    b.predicate_count += predicate != 0;
    if (++b.arrived == b.size) {
      for (unsigned id = 0; id < b.size; ++id) ex.thread(id).state = ThreadState::ready;
      b.barrier_result = b.predicate_count;
      b.predicate_count = 0;
      b.arrived = 0;
    }
    ex.wait(self, name, where);
    result = b.barrier_result;
    ++self.barriers;
  }
  san::acquire(&b.barrier_token[parity]);
  return result;
}

}  // namespace simt::detail
