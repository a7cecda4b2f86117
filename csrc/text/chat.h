// Chat formatting (SPEC §3): rendering a conversation in its model's chat template, image
// placeholder expansion and the label mask.
//
// The template is a family of text/chat_template.h (the Tokenizer carries its model's). chatml:
//
//   <|im_start|>system\n{system}<|im_end|>\n
//   <|im_start|>user\n{content}<|im_end|>\n          each <image> → that image's prompt
//   <|im_start|>assistant\n{content}<|im_end|>\n     {content}<|im_end|>\n supervised
//   generation prompt: <|im_start|>assistant\n
//
// minimind3 (MiniMind-3's Jinja template, as transformers renders it) differs in the assistant
// turn and the generation prompt (thinking off):
//
//   <|im_start|>assistant\n<think>\n{reasoning}\n</think>\n\n{content}<|im_end|>\n
//   generation prompt: <|im_start|>assistant\n<think>\n\n</think>\n\n
//
// where a reply that holds "</think>" is split as the template does: {reasoning} is the text before
// the first "</think>", after the last "<think>" in it, without leading or trailing newlines;
// {content} the text after the last "</think>" without leading newlines. A reply without "</think>"
// has an empty reasoning ("<think>\n\n</think>\n\n") and loses its leading newlines. As in
// MiniMind-V, everything after "<|im_start|>assistant\n" up to and including "<|im_end|>\n" is
// supervised, the think block too.
//
// smolvlm (SmolVLM's template, as transformers renders it; minivlm's string content is SmolVLM's
// content list split at each <image> / <video>, so content that starts with <image> has an image
// first and gets ":" alone):
//
//   <|im_start|>                                     once, before the first turn
//   System: {system}<end_of_utterance>\n
//   User: {content}<end_of_utterance>\n              "User:<image>…" when content starts with
//   <image> Assistant: {content}<end_of_utterance>\n         " {content}<end_of_utterance>"
//   supervised generation prompt: Assistant:
//
// Supervised in a smolvlm assistant turn: everything after "Assistant:" up to and including
// <end_of_utterance>: the space after the colon (the model writes it after the generation prompt
// "Assistant:"), the reply and <end_of_utterance> (where generation stops), not the "\n" after it
// and not the "Assistant:" header.
//
// Without the empty think block (ChatOptions::empty_think false), a minimind3 assistant turn whose
// reasoning is empty is <|im_start|>assistant\n{content}<|im_end|>\n: MiniMind-V's training data
// removes "<think>\n\n</think>\n\n" from the rendered text of most samples (data/dataset.h); the
// supervised text is then {content}<|im_end|>\n. The other families never write the block.
//
// Placeholders: in every family each <image> of the user messages becomes the next image's prompt
// and each <video> the next video's (ImagePrompt::video), in one order: the k-th placeholder,
// either kind, is images[k], whose kind must match.
//
// A conversation is rendered as one string and tokenized whole. The supervised tokens are found by
// byte offset, not by tokenizing pieces apart: a token is supervised when it starts inside an
// assistant turn's supervised text. (In chatml, when a reply starts with two or more whitespace
// characters the header's "\n" can share a token with them; that token starts in the header and so
// is not supervised.)
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace minivlm {

struct Message {
  std::string role;  // system | user | assistant
  std::string content;
};

// What one image's <image> placeholder becomes: the pattern its image processor gives it
// (data/processor.h). An image of one tile is one run of N image tokens; an image of several tiles
// is a run of N per tile, between special tokens.
// A video (data/video.h) is one ImagePrompt with `video` set: its <video> placeholder becomes the
// text of all its frames.
struct ImagePrompt {
  std::string text;
  int64_t image_tokens = 0;  // image tokens that `text` holds
  bool video = false;        // replaces a <video> placeholder, not an <image>
};

// `n` copies of `image_token`: the run of one tile.
ImagePrompt image_run(const std::string& image_token, int64_t n);

// How a training conversation is rendered.
struct ChatOptions {
  bool empty_think = true;  // minimind3: write the empty think block of a reply without reasoning
};

struct RenderedChat {
  std::string text;
  std::vector<std::pair<size_t, size_t>> supervised;  // byte ranges [begin, end) of text
};

struct EncodedChat {
  std::vector<int32_t> ids;     // [T]
  std::vector<uint8_t> labels;  // [T] 1 where token t is supervised (predicted from position t-1)
};

// The text of a conversation in `chat_template` with one prompt per image or video, in order: the
// k-th <image> or <video> of the user messages becomes images[k].text (of the same kind). When the
// user messages hold no placeholder, "<image>\n" or "<video>\n" is put before the first user
// message once per image or video, in order; otherwise their placeholders must fit the media. With
// `generation_prompt`, the template's generation prompt follows the turns. Throws on an unknown
// role (naming it), a placeholder count that does not fit, or an image prompt without image tokens.
RenderedChat render_chat(const std::vector<Message>& messages,
                         const std::vector<ImagePrompt>& images, bool generation_prompt,
                         ChatTemplate chat_template, const ChatOptions& options = {});

// The placeholders of the user messages in order: true for <video>, false for <image>.
std::vector<bool> placeholder_kinds(const std::vector<Message>& messages);

// `text` with each <image> / <video> replaced by the next image's / video's prompt, as is otherwise
// (no chat template). Throws when the placeholders do not fit the media, naming both.
std::string expand_images(const std::string& text, const std::vector<ImagePrompt>& images);

// Ids and label mask of a training sample, rendered in the tokenizer's chat template. Checks that
// the ids hold exactly the images' image tokens (message text that spells `image_token` itself
// would break the image runs).
EncodedChat encode_chat(const Tokenizer& tok, const std::vector<Message>& messages,
                        const std::vector<ImagePrompt>& images, const std::string& image_token,
                        const ChatOptions& options = {});

// Ids of the turns so far followed by the generation prompt, in the tokenizer's chat template.
std::vector<int32_t> encode_generation_prompt(const Tokenizer& tok,
                                              const std::vector<Message>& messages,
                                              const std::vector<ImagePrompt>& images,
                                              const std::string& image_token);

// The id of the token that ends a reply in the tokenizer's chat template (<|im_end|>,
// <end_of_utterance>): where generation stops.
int32_t end_of_turn_id(const Tokenizer& tok);

// The placeholder of one image (or video) put before a user's text when the text holds none, as
// the family's own data writes it: "<image>\n" for MiniMind's formats (MiniMind-V's datasets),
// "<image>" for SmolVLM's (an image item of the message's content list, the text item after it).
std::string media_placeholder(ChatTemplate chat_template, bool video);

}  // namespace minivlm
