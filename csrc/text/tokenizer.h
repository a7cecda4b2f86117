// Tokenizer: a Hugging Face tokenizer.json with a byte-level BPE model (SPEC §3). Encoding matches
// the tokenizers library id for id: added tokens are cut out whole first (leftmost, longest), the
// rest is split by the GPT-2 pre-tokenizer (after a Digits pre-tokenizer, in the Sequence SmolLM2
// uses) and each piece is BPE-encoded. As a Hugging Face
// tokenizer does, it carries the chat template of its model (text/chat_template.h), which
// encode_chat and encode_generation_prompt (text/chat.h) render with.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "text/chat_template.h"

namespace minivlm {

namespace text {
class Bpe;
}

struct AddedToken {
  std::string content;
  int32_t id = 0;
  bool special = false;      // dropped by decode(..., skip_special = true)
  bool single_word = false;  // matches only when not inside a word
  bool lstrip = false;       // swallows the whitespace on its left
  bool rstrip = false;       // swallows the whitespace on its right
  bool normalized = false;   // matched after the (empty) normalizer, in a second pass
};

class Tokenizer {
 public:
  struct Encoding {
    std::vector<int32_t> ids;      // [T]
    std::vector<uint32_t> starts;  // [T] byte offset in the text where each token starts
  };

  // Ids above this are refused at load (per-id tables are sized by the largest id).
  static constexpr int32_t kMaxTokenId = (1 << 24) - 1;

  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  // Also reads the chat template of the tokenizer_config.json beside `path` (chat_template_beside).
  static Tokenizer from_file(const std::string& path);
  // `origin` names the source in error messages. The chat template is chatml.
  static Tokenizer from_json(std::string_view json, const std::string& origin);

  std::vector<int32_t> encode(std::string_view text) const;
  Encoding encode_with_offsets(std::string_view text) const;
  // UTF-8 text of the ids; byte sequences that are not valid UTF-8 become U+FFFD. Throws on an id
  // outside the vocabulary.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const;
  // The raw bytes of one token (an added token's content as is), for decoding a stream.
  const std::string& token_bytes(int32_t id) const;

  // Id of a vocabulary string (a BPE token in the byte↦unicode alphabet, or an added token).
  std::optional<int32_t> find_token(std::string_view token) const;
  int32_t token_to_id(std::string_view token) const;  // throws naming the token if absent
  bool is_special(int32_t id) const;
  int32_t vocab_size() const { return static_cast<int32_t>(bytes_.size()); }  // largest id + 1

  ChatTemplate chat_template() const { return chat_template_; }
  void set_chat_template(ChatTemplate t) { chat_template_ = t; }

 private:
  struct Matcher;
  Tokenizer();

  void encode_text(std::string_view text, uint32_t offset, std::vector<int32_t>& ids,
                   std::vector<uint32_t>* starts) const;
  void encode_byte_level(std::string_view text, uint32_t offset, std::vector<int32_t>& ids,
                         std::vector<uint32_t>* starts) const;
  void encode_segment(std::string_view text, uint32_t offset, size_t pass,
                      std::vector<int32_t>& ids, std::vector<uint32_t>* starts) const;

  std::unique_ptr<text::Bpe> bpe_;
  std::vector<AddedToken> added_;
  std::vector<std::unique_ptr<Matcher>> passes_;  // raw-text pass, then normalized-text pass
  std::unordered_map<std::string, int32_t> vocab_;
  std::unordered_map<std::string, int32_t> added_ids_;
  std::vector<std::string> bytes_;  // [V] raw bytes of each id
  std::vector<uint32_t> bpe_size_;  // [V] bytes a BPE token covers in the text
  std::vector<uint8_t> present_;    // [V] whether the id exists
  std::vector<uint8_t> special_;    // [V]
  bool split_digits_ = false;       // a Digits pre-tokenizer runs before ByteLevel
  bool individual_digits_ = false;
  bool add_prefix_space_ = false;
  bool use_regex_ = true;
  ChatTemplate chat_template_ = ChatTemplate::chatml;
};

}  // namespace minivlm
