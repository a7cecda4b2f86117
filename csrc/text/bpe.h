// Byte-level BPE (GPT-2): a piece's bytes start as single-byte tokens and are merged pair by pair,
// the pair of lowest merge rank first (leftmost on ties), until no mergeable pair is left. The
// merge order reproduces the priority queue of the Hugging Face tokenizers library, stale entries
// included, so the ids match it exactly.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace minivlm::text {

// GPT-2's bytes_to_unicode: the printable code point that stands for each byte in a vocabulary.
uint32_t byte_to_codepoint(uint8_t b);
// Inverse of byte_to_codepoint; -1 for code points that stand for no byte.
int codepoint_to_byte(uint32_t cp);
// The raw bytes a token string stands for; code points outside the byte map are kept as UTF-8 (as
// the ByteLevel decoder of the tokenizers library does).
std::string byte_level_decode(std::string_view token);

class Bpe {
 public:
  using Vocab = std::unordered_map<std::string, int32_t>;
  using Merges = std::vector<std::pair<std::string, std::string>>;

  // `vocab` maps token strings (in the byte↦unicode alphabet) to ids; merge k has rank k. Every
  // byte's token must be in the vocabulary, and so must both sides and the result of every merge.
  // With `ignore_merges`, a piece that is itself in the vocabulary is taken whole. `origin` names
  // the source in error messages.
  Bpe(const Vocab& vocab, const Merges& merges, bool ignore_merges, const std::string& origin);
  ~Bpe();
  Bpe(Bpe&&) noexcept;
  Bpe& operator=(Bpe&&) noexcept;

  // Appends the ids of one pre-tokenized piece (raw bytes) to `out`. Thread-safe.
  void encode_piece(std::string_view bytes, std::vector<int32_t>& out) const;

 private:
  struct MergeTable;
  struct Cache;

  void merge(std::string_view bytes, std::vector<int32_t>& out) const;

  int32_t byte_id_[256];
  std::unique_ptr<MergeTable> merges_;
  std::unique_ptr<Cache> cache_;
  std::unique_ptr<Vocab> whole_pieces_;  // vocabulary keyed by raw bytes, only with ignore_merges
};

}  // namespace minivlm::text
