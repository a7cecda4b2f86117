#include "text/bpe.h"

#include <algorithm>
#include <mutex>

#include "core/error.h"
#include "text/unicode.h"

namespace minivlm::text {

namespace {

// Printable bytes stand for themselves; the others, in order, for U+0100 onwards (68 of them).
struct ByteMap {
  static constexpr uint32_t kCodepoints = 256 + 68;
  uint32_t to_cp[256];
  int16_t from_cp[kCodepoints];
  ByteMap() {
    std::fill(std::begin(from_cp), std::end(from_cp), int16_t{-1});
    uint32_t extra = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      to_cp[b] = printable ? b : extra++;
      from_cp[to_cp[b]] = static_cast<int16_t>(b);
    }
  }
};

const ByteMap& byte_map() {
  static const ByteMap map;
  return map;
}

std::string byte_token(uint8_t b) {
  std::string s;
  append_utf8(s, byte_to_codepoint(b));
  return s;
}

}  // namespace

uint32_t byte_to_codepoint(uint8_t b) { return byte_map().to_cp[b]; }

std::string byte_level_decode(std::string_view token) {
  std::string out;
  const auto* s = reinterpret_cast<const unsigned char*>(token.data());
  size_t i = 0;
  while (i < token.size()) {
    uint32_t cp;
    const int step = utf8_step(s + i, token.size() - i, &cp);
    if (step < 0) {
      out.append(token.substr(i, static_cast<size_t>(-step)));
      i += static_cast<size_t>(-step);
      continue;
    }
    const int b = codepoint_to_byte(cp);
    if (b >= 0)
      out += static_cast<char>(b);
    else
      out.append(token.substr(i, static_cast<size_t>(step)));
    i += static_cast<size_t>(step);
  }
  return out;
}

int codepoint_to_byte(uint32_t cp) {
  return cp < ByteMap::kCodepoints ? byte_map().from_cp[cp] : -1;
}

// Open-addressing hash map (left id, right id) → (rank, merged id).
struct Bpe::MergeTable {
  struct Slot {
    uint64_t key = kEmpty;
    int32_t rank = 0, id = 0;
  };
  static constexpr uint64_t kEmpty = ~0ull;
  std::vector<Slot> slots;
  uint64_t mask = 0;

  explicit MergeTable(size_t count) {
    size_t cap = 16;
    while (cap < 2 * count) cap *= 2;
    slots.resize(cap);
    mask = cap - 1;
  }
  static uint64_t key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  size_t home(uint64_t k) const { return (k * 0x9E3779B97F4A7C15ull) >> 17 & mask; }
  // A later duplicate of a merge overrides the earlier one, as in the tokenizers library.
  void put(int32_t a, int32_t b, int32_t rank, int32_t id) {
    const uint64_t k = key(a, b);
    size_t i = home(k);
    while (slots[i].key != kEmpty && slots[i].key != k) i = (i + 1) & mask;
    slots[i] = {k, rank, id};
  }
  const Slot* find(int32_t a, int32_t b) const {
    const uint64_t k = key(a, b);
    for (size_t i = home(k);; i = (i + 1) & mask) {
      if (slots[i].key == k) return &slots[i];
      if (slots[i].key == kEmpty) return nullptr;
    }
  }
};

// Piece → ids. Bounded: once full it stops taking new pieces (the frequent ones came first).
struct Bpe::Cache {
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  static constexpr size_t kCapacity = 1 << 17;
  static constexpr size_t kMaxPiece = 256;
  std::mutex mutex;
  std::unordered_map<std::string, std::vector<int32_t>, Hash, std::equal_to<>> map;
};

Bpe::Bpe(const Vocab& vocab, const Merges& merges, bool ignore_merges, const std::string& origin)
    : merges_(std::make_unique<MergeTable>(merges.size())), cache_(std::make_unique<Cache>()) {
  auto id_of = [&](const std::string& token, const char* what, size_t merge) {
    auto it = vocab.find(token);
    MV_CHECK(it != vocab.end(), "tokenizer ", origin, ": ", what, " '", token, "' of merge ", merge,
             " is not in the vocabulary");
    return it->second;
  };
  for (int b = 0; b < 256; ++b) {
    auto it = vocab.find(byte_token(static_cast<uint8_t>(b)));
    MV_CHECK(it != vocab.end(), "tokenizer ", origin, ": the vocabulary has no token for byte ", b,
             " ('", byte_token(static_cast<uint8_t>(b)), "'); a byte-level BPE needs all 256");
    byte_id_[b] = it->second;
  }
  for (size_t k = 0; k < merges.size(); ++k) {
    const auto& [left, right] = merges[k];
    const int32_t a = id_of(left, "left token", k), b = id_of(right, "right token", k);
    merges_->put(a, b, static_cast<int32_t>(k), id_of(left + right, "merged token", k));
  }
  if (ignore_merges) {
    whole_pieces_ = std::make_unique<Vocab>();
    for (const auto& [token, id] : vocab) whole_pieces_->emplace(byte_level_decode(token), id);
  }
}

Bpe::~Bpe() = default;
Bpe::Bpe(Bpe&&) noexcept = default;
Bpe& Bpe::operator=(Bpe&&) noexcept = default;

void Bpe::encode_piece(std::string_view bytes, std::vector<int32_t>& out) const {
  if (bytes.size() == 1) {
    out.push_back(byte_id_[static_cast<uint8_t>(bytes[0])]);
    return;
  }
  if (whole_pieces_) {
    auto it = whole_pieces_->find(std::string(bytes));
    if (it != whole_pieces_->end()) {
      out.push_back(it->second);
      return;
    }
  }
  if (bytes.size() > Cache::kMaxPiece) {
    merge(bytes, out);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(cache_->mutex);
    auto it = cache_->map.find(bytes);
    if (it != cache_->map.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t first = out.size();
  merge(bytes, out);
  std::lock_guard<std::mutex> lock(cache_->mutex);
  if (cache_->map.size() < Cache::kCapacity)
    cache_->map.emplace(std::string(bytes), std::vector<int32_t>(out.begin() + first, out.end()));
}

void Bpe::merge(std::string_view bytes, std::vector<int32_t>& out) const {
  struct Symbol {
    int32_t id, prev, next;
    bool alive;
  };
  struct Candidate {
    int32_t rank, pos, id;
    // std heap functions build a max-heap; "greater" pops the lowest (rank, pos) first.
    bool operator<(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  thread_local std::vector<Symbol> symbols;
  thread_local std::vector<Candidate> heap;
  const int32_t n = static_cast<int32_t>(bytes.size());
  symbols.resize(static_cast<size_t>(n));
  heap.clear();
  for (int32_t i = 0; i < n; ++i)
    symbols[i] = {byte_id_[static_cast<uint8_t>(bytes[i])], i - 1, i + 1 < n ? i + 1 : -1, true};
  auto push = [&](int32_t pos) {
    const int32_t next = symbols[pos].next;
    if (next < 0) return;
    if (const MergeTable::Slot* m = merges_->find(symbols[pos].id, symbols[next].id)) {
      heap.push_back({m->rank, pos, m->id});
      std::push_heap(heap.begin(), heap.end());
    }
  };
  for (int32_t i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    const Candidate top = heap.back();
    heap.pop_back();
    Symbol& left = symbols[top.pos];
    if (!left.alive || left.next < 0) continue;
    // An entry is stale once either side has changed; the check is by the merged id, as the
    // reference does.
    const MergeTable::Slot* m = merges_->find(left.id, symbols[left.next].id);
    if (m == nullptr || m->id != top.id) continue;
    Symbol& right = symbols[left.next];
    left.id = top.id;
    left.next = right.next;
    right.alive = false;
    if (right.next >= 0) symbols[right.next].prev = top.pos;
    if (left.prev >= 0) push(left.prev);
    push(top.pos);
  }
  for (int32_t i = 0; i >= 0; i = symbols[i].next) out.push_back(symbols[i].id);
}

}  // namespace minivlm::text
