// The chat format (SPEC §3): ChatML rendering, image placeholder expansion and the label mask.
//
//   <|im_start|>system\n{system}<|im_end|>\n
//   <|im_start|>user\n{content}<|im_end|>\n          each <image> → N image tokens
//   <|im_start|>assistant\n{content}<|im_end|>\n     {content}<|im_end|>\n supervised
//
// A conversation is rendered as one string and tokenized whole. The supervised tokens are found by
// byte offset, not by tokenizing pieces apart: a token is supervised when it starts inside an
// assistant reply or its closing "<|im_end|>\n". (When a reply starts with two or more whitespace
// characters the header's "\n" can share a token with them; that token starts in the header and so
// is not supervised.)
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "text/tokenizer.h"

namespace minivlm {

struct Message {
  std::string role;  // system | user | assistant
  std::string content;
};

struct ChatFormat {
  int tokens_per_image = 0;  // N: image tokens that stand for one image
  std::string image_token = "<|image_pad|>";
};

struct RenderedChat {
  std::string text;
  std::vector<std::pair<size_t, size_t>> supervised;  // byte ranges [begin, end) of text
};

struct EncodedChat {
  std::vector<int32_t> ids;     // [T]
  std::vector<uint8_t> labels;  // [T] 1 where token t is supervised (predicted from position t-1)
};

// The text of a conversation with `num_images` images. When the user messages hold no <image>,
// "<image>\n" is put before the first user message once per image; otherwise their number of
// <image> must equal num_images. With `generation_prompt`, "<|im_start|>assistant\n" follows the
// turns. Throws on an unknown role (naming it) or a placeholder count that does not fit.
RenderedChat render_chat(const std::vector<Message>& messages, int num_images,
                         const ChatFormat& format, bool generation_prompt);

// Ids and label mask of a training sample. Checks that the ids hold exactly num_images × N image
// tokens (message text that spells the image token itself would break the image runs).
EncodedChat encode_chat(const Tokenizer& tok, const std::vector<Message>& messages, int num_images,
                        const ChatFormat& format);

// Ids of the turns so far followed by the generation prompt.
std::vector<int32_t> encode_generation_prompt(const Tokenizer& tok,
                                              const std::vector<Message>& messages, int num_images,
                                              const ChatFormat& format);

}  // namespace minivlm
