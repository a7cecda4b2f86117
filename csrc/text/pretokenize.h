// The GPT-2 pre-tokenizer: splits text into the pieces that BPE then encodes one by one, exactly as
// the regex
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// does under Oniguruma (the engine of Hugging Face tokenizers), written out by hand: one pass, no
// backtracking. Invalid UTF-8 bytes count as characters of no class (they fall in the third group).
#pragma once
#include <cstdint>
#include <string_view>
#include <vector>

namespace minivlm::text {

struct Piece {
  uint32_t begin, size;  // a byte range of the text
};

// Appends the pieces of `text` to `out`; together they cover the text exactly, in order.
void split_gpt2(std::string_view text, std::vector<Piece>& out);

// The Digits pre-tokenizer of Hugging Face tokenizers: numeric characters (\p{N}: Rust's
// char::is_numeric, the general categories Nd, Nl and No) are split off from the text around them,
// each one alone when `individual`, else each run of them as one piece; the text between them is a
// piece of its own. Appends to `out`; the pieces cover the text exactly, in order. Invalid UTF-8
// bytes count as non-numeric.
void split_digits(std::string_view text, bool individual, std::vector<Piece>& out);

}  // namespace minivlm::text
