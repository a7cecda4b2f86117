#include "text/bpe.h"

#include <algorithm>
#include <cstring>
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
  int shift = 60;

  explicit MergeTable(size_t count) {
    size_t cap = 16;
    while (cap < 2 * count) {
      cap *= 2;
      --shift;
    }
    slots.resize(cap);
    mask = cap - 1;
  }
  static uint64_t key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  // Fibonacci hashing: the top bits of the product depend on every bit of the key.
  size_t home(uint64_t k) const { return (k * 0x9E3779B97F4A7C15ull) >> shift; }
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

// Piece → ids for short pieces: a direct-mapped table of 64-byte entries (a colliding piece
// replaces the old one), so a lookup touches one cache line.
struct Bpe::Cache {
  static constexpr size_t kSlots = 1 << 16;
  static constexpr size_t kMaxPiece = 26;
  static constexpr size_t kMaxIds = 8;
  struct Entry {
    uint32_t hash = 0;
    uint8_t piece_size = 0;  // 0: empty
    uint8_t id_count = 0;
    char piece[kMaxPiece];
    int32_t ids[kMaxIds];
  };
  static_assert(sizeof(Entry) == 64);

  std::mutex mutex;
  std::vector<Entry> entries = std::vector<Entry>(kSlots);

  static uint32_t hash(std::string_view s) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ s.size();
    for (size_t i = 0; i < s.size(); i += 8) {
      uint64_t w = 0;
      std::memcpy(&w, s.data() + i, std::min<size_t>(8, s.size() - i));
      h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
      h ^= h >> 31;
    }
    return static_cast<uint32_t>(h ^ (h >> 32));
  }

  bool find(std::string_view piece, uint32_t h, std::vector<int32_t>& out) {
    std::lock_guard<std::mutex> lock(mutex);
    const Entry& e = entries[h % kSlots];
    if (e.hash != h || e.piece_size != piece.size() ||
        std::memcmp(e.piece, piece.data(), piece.size()) != 0)
      return false;
    out.insert(out.end(), e.ids, e.ids + e.id_count);
    return true;
  }

  void put(std::string_view piece, uint32_t h, const int32_t* ids, size_t count) {
    if (count > kMaxIds) return;
    std::lock_guard<std::mutex> lock(mutex);
    Entry& e = entries[h % kSlots];
    e.hash = h;
    e.piece_size = static_cast<uint8_t>(piece.size());
    e.id_count = static_cast<uint8_t>(count);
    std::memcpy(e.piece, piece.data(), piece.size());
    std::copy(ids, ids + count, e.ids);
  }
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
  const uint32_t h = Cache::hash(bytes);
  if (cache_->find(bytes, h, out)) return;
  const size_t first = out.size();
  merge(bytes, out);
  cache_->put(bytes, h, out.data() + first, out.size() - first);
}

// The reference pops its priority queue in (rank, position) order and drops stale entries; an entry
// can only go stale by its pair changing, and then its merged id differs. So its merge order is
// "lowest (rank, position) among the current pairs", which a min segment tree over the pairs gives
// at its root; each merge updates three leaves.
void Bpe::merge(std::string_view bytes, std::vector<int32_t>& out) const {
  constexpr uint64_t kNone = ~0ull;
  thread_local std::vector<int32_t> ids, next, prev, merged;
  thread_local std::vector<uint64_t> tree;
  const int32_t n = static_cast<int32_t>(bytes.size());
  size_t leaves = 1;
  while (leaves < bytes.size()) leaves *= 2;
  ids.resize(bytes.size());
  next.resize(bytes.size());
  prev.resize(bytes.size());
  merged.resize(bytes.size());
  tree.assign(2 * leaves, kNone);
  for (int32_t i = 0; i < n; ++i) {
    ids[i] = byte_id_[static_cast<uint8_t>(bytes[i])];
    next[i] = i + 1 < n ? i + 1 : -1;
    prev[i] = i - 1;
  }
  auto set = [&](int32_t pos, uint64_t key) {
    size_t j = leaves + static_cast<size_t>(pos);
    if (tree[j] == key) return;
    tree[j] = key;
    for (j /= 2; j >= 1; j /= 2) {
      const uint64_t m = std::min(tree[2 * j], tree[2 * j + 1]);
      if (tree[j] == m) break;  // unchanged here, so unchanged above
      tree[j] = m;
    }
  };
  auto pair_key = [&](int32_t pos) {  // pair (symbol at pos, its successor)
    if (next[pos] < 0) return kNone;
    const MergeTable::Slot* m = merges_->find(ids[pos], ids[next[pos]]);
    if (!m) return kNone;
    merged[pos] = m->id;
    return static_cast<uint64_t>(m->rank) << 32 | static_cast<uint32_t>(pos);
  };
  for (int32_t i = 0; i + 1 < n; ++i) tree[leaves + static_cast<size_t>(i)] = pair_key(i);
  for (size_t j = leaves - 1; j >= 1; --j) tree[j] = std::min(tree[2 * j], tree[2 * j + 1]);
  while (tree[1] != kNone) {
    const int32_t pos = static_cast<int32_t>(tree[1] & 0xFFFFFFFFu);
    const int32_t right = next[pos];
    ids[pos] = merged[pos];
    next[pos] = next[right];
    if (next[pos] >= 0) prev[next[pos]] = pos;
    set(right, kNone);
    set(pos, pair_key(pos));
    if (prev[pos] >= 0) set(prev[pos], pair_key(prev[pos]));
  }
  for (int32_t i = 0; i >= 0; i = next[i]) out.push_back(ids[i]);
}

}  // namespace minivlm::text
