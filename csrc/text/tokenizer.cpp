#include "text/tokenizer.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_check.h"
#include "core/json_file.h"
#include "text/bpe.h"
#include "text/pretokenize.h"
#include "text/unicode.h"

namespace minivlm {

using nlohmann::json;

namespace {

// Unicode \w of the single_word rule, approximated by the classes the pre-tokenizer knows (the
// tokenizers library also counts combining marks and connector punctuation beyond '_').
bool is_word_char(uint32_t cp) {
  const text::CharClass c = text::char_class(cp);
  return c == text::kLetter || c == text::kNumber || cp == '_';
}

// First and last code point of s; 0 when s is empty or starts / ends with invalid UTF-8.
uint32_t first_codepoint(std::string_view s) {
  uint32_t cp = 0;
  if (!s.empty() &&
      text::utf8_step(reinterpret_cast<const unsigned char*>(s.data()), s.size(), &cp) < 0)
    cp = 0;
  return cp;
}

uint32_t last_codepoint(std::string_view s) {
  size_t i = s.size();
  while (i > 0 && s.size() - i < 4) {
    --i;
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) break;
  }
  uint32_t cp = 0;
  const int step = s.empty() ? 0
                             : text::utf8_step(reinterpret_cast<const unsigned char*>(s.data()) + i,
                                               s.size() - i, &cp);
  return step > 0 && i + static_cast<size_t>(step) == s.size() ? cp : 0;
}

// Size of the whitespace run at the start of s.
size_t leading_space(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t i = 0;
  while (i < s.size()) {
    uint32_t cp;
    const int step = text::utf8_step(p + i, s.size() - i, &cp);
    if (step < 0 || text::char_class(cp) != text::kSpace) break;
    i += static_cast<size_t>(step);
  }
  return i;
}

// Start of the whitespace run that ends s.
size_t trailing_space_start(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t start = s.size(), i = 0;
  while (i < s.size()) {
    uint32_t cp;
    const int step = text::utf8_step(p + i, s.size() - i, &cp);
    const size_t size = static_cast<size_t>(step < 0 ? -step : step);
    const bool space = step > 0 && text::char_class(cp) == text::kSpace;
    if (!space)
      start = s.size();
    else if (start == s.size())
      start = i;
    i += size;
  }
  return start;
}

bool flag(const json& j, const char* key, bool fallback) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? fallback : it->get<bool>();
}

// A JSON value for an error message: short, and never a dump of a whole nested value.
std::string describe(const json& v) {
  if (!v.is_primitive()) return std::string("a JSON ") + v.type_name();
  std::string s = v.dump();
  return s.size() <= 80 ? s : s.substr(0, 77) + "...";
}

// A token id as the file writes it: an integer in [0, kMaxTokenId] (tables of the largest id's
// size are allocated from it, so a huge id would take unbounded memory, and one past 32 bits would
// wrap).
int32_t token_id(const json& id, const std::string& what) {
  MV_CHECK(id.is_number_integer(), what, " has an id that is not an integer: ", describe(id));
  MV_CHECK(id.is_number_unsigned() || id.get<int64_t>() >= 0, what, " has a negative id ",
           describe(id));
  const uint64_t v = id.get<uint64_t>();
  MV_CHECK(v <= static_cast<uint64_t>(Tokenizer::kMaxTokenId), what, " has the id ", v,
           ", above the limit of ", Tokenizer::kMaxTokenId);
  return static_cast<int32_t>(v);
}

std::string component_type(const json& j) {
  return j.is_object() && j.contains("type") ? j["type"].get<std::string>() : "(untyped)";
}

}  // namespace

// Leftmost-longest search over one set of added tokens (the Aho-Corasick match kind the tokenizers
// library uses); candidates are indexed by first byte, longest first.
struct Tokenizer::Matcher {
  std::vector<uint32_t> by_first[256];

  void add(const std::vector<AddedToken>& tokens, uint32_t index) {
    auto& list = by_first[static_cast<unsigned char>(tokens[index].content[0])];
    list.push_back(index);
    std::stable_sort(list.begin(), list.end(), [&](uint32_t a, uint32_t b) {
      return tokens[a].content.size() > tokens[b].content.size();
    });
  }

  // First match at or after `from`: sets *pos and *index, or returns false.
  bool find(const std::vector<AddedToken>& tokens, std::string_view text, size_t from, size_t* pos,
            uint32_t* index) const {
    for (size_t i = from; i < text.size(); ++i) {
      for (uint32_t k : by_first[static_cast<unsigned char>(text[i])]) {
        const std::string& c = tokens[k].content;
        if (text.compare(i, c.size(), c) == 0) {
          *pos = i;
          *index = k;
          return true;
        }
      }
    }
    return false;
  }
};

Tokenizer::Tokenizer() = default;
Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

Tokenizer Tokenizer::from_file(const std::string& path) {
  Tokenizer t = from_json(read_regular_file(path, "tokenizer", kMaxJsonFileBytes), path);
  t.chat_template_ = chat_template_beside(path);
  return t;
}

Tokenizer Tokenizer::from_json(std::string_view text, const std::string& origin) {
  const json j = parse_json(text, "tokenizer " + origin);
  const std::string where = "tokenizer " + origin + ": ";
  Tokenizer t;
  try {
    MV_CHECK(j.value("normalizer", json()).is_null(), where, "normalizer '",
             component_type(j["normalizer"]), "' is not supported (only null)");
    json pre = j.value("pre_tokenizer", json());
    const char* supported =
        "' is not supported (only ByteLevel, or a Sequence of Digits then ByteLevel)";
    if (component_type(pre) == "Sequence") {
      // SmolLM2's: digits split off (each alone, or in runs), then ByteLevel on every piece.
      const json list = pre.value("pretokenizers", json());
      std::string names;
      for (const json& p : list.is_array() ? list : json::array())
        names += (names.empty() ? "" : ", ") + component_type(p);
      MV_CHECK(list.is_array() && list.size() == 2 && component_type(list[0]) == "Digits" &&
                   component_type(list[1]) == "ByteLevel",
               where, "pre_tokenizer 'Sequence[", names, "]", supported);
      t.split_digits_ = true;
      t.individual_digits_ = flag(list[0], "individual_digits", false);
      pre = list[1];
    }
    MV_CHECK(component_type(pre) == "ByteLevel", where, "pre_tokenizer '", component_type(pre),
             supported);
    t.add_prefix_space_ = flag(pre, "add_prefix_space", true);
    t.use_regex_ = flag(pre, "use_regex", true);
    {
      const json c = j.value("decoder", json());
      MV_CHECK(c.is_null() || component_type(c) == "ByteLevel", where, "decoder '",
               component_type(c), "' is not supported (only ByteLevel or null)");
    }
    {
      // A TemplateProcessing that leaves a single sequence as it is ("$A", what transformers
      // writes for tokenizers without a BOS/EOS template) changes nothing here either.
      const json c = j.value("post_processor", json());
      const bool identity_template =
          component_type(c) == "TemplateProcessing" && c.value("single", json()).is_array() &&
          c["single"].size() == 1 && c["single"][0].contains("Sequence") &&
          c["single"][0]["Sequence"].value("id", "") == "A";
      MV_CHECK(c.is_null() || component_type(c) == "ByteLevel" || identity_template, where,
               "post_processor '", component_type(c),
               "' is not supported (only ByteLevel, null, or a TemplateProcessing whose single "
               "sequence is \"$A\" alone: one that adds special tokens is not)");
    }

    const json& model = j.at("model");
    MV_CHECK(!model.contains("type") || model["type"] == "BPE", where, "model type '",
             component_type(model), "' is not supported (only BPE)");
    const json dropout = model.value("dropout", json());
    MV_CHECK(dropout.is_null() || dropout.get<double>() == 0.0, where,
             "BPE dropout is not supported");
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
      const json v = model.value(key, json());
      MV_CHECK(v.is_null() || v.get<std::string>().empty(), where, "BPE option ", key,
               " is not supported in a byte-level tokenizer");
    }
    const json& vocab = model.at("vocab");
    MV_CHECK(vocab.is_object(), where, "model.vocab is not an object but a JSON ",
             vocab.type_name());
    for (const auto& [token, id] : vocab.items())
      t.vocab_[token] = token_id(id, where + "vocab entry '" + token + "'");
    text::Bpe::Merges merges;
    const json& jm = model.at("merges");
    MV_CHECK(jm.is_array(), where, "model.merges is not an array but a JSON ", jm.type_name());
    merges.reserve(jm.size());
    for (size_t k = 0; k < jm.size(); ++k) {
      const json& m = jm[k];
      if (m.is_string()) {
        const std::string s = m.get<std::string>();
        const size_t space = s.find(' ');
        MV_CHECK(space != std::string::npos && s.find(' ', space + 1) == std::string::npos, where,
                 "merge ", k, " '", s, "' is not two tokens separated by one space");
        merges.emplace_back(s.substr(0, space), s.substr(space + 1));
      } else {
        MV_CHECK(m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string(), where,
                 "merge ", k, " ", describe(m), " is neither \"a b\" nor [\"a\", \"b\"]");
        merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
      }
    }
    t.bpe_ =
        std::make_unique<text::Bpe>(t.vocab_, merges, flag(model, "ignore_merges", false), origin);

    std::unordered_map<std::string, size_t> index;
    const json added = j.value("added_tokens", json::array());
    MV_CHECK(added.is_array(), where, "added_tokens is not an array but a JSON ",
             added.type_name());
    for (const json& a : added) {
      AddedToken tok;
      tok.content = a.at("content").get<std::string>();
      tok.id = token_id(a.at("id"), where + "added token '" + tok.content + "'");
      if (tok.content.empty()) continue;
      tok.special = flag(a, "special", false);
      tok.single_word = flag(a, "single_word", false);
      tok.lstrip = flag(a, "lstrip", false);
      tok.rstrip = flag(a, "rstrip", false);
      tok.normalized = flag(a, "normalized", !tok.special);
      // A token listed twice keeps its last definition.
      auto [it, inserted] = index.try_emplace(tok.content, t.added_.size());
      if (inserted)
        t.added_.push_back(tok);
      else
        t.added_[it->second] = tok;
    }
  } catch (const json::exception& e) {
    MV_FAIL(where, e.what());
  }

  int32_t max_id = -1;
  for (const auto& [token, id] : t.vocab_) max_id = std::max(max_id, id);
  for (const AddedToken& a : t.added_) max_id = std::max(max_id, a.id);
  const size_t v = static_cast<size_t>(max_id + 1);
  t.bytes_.assign(v, std::string());
  t.bpe_size_.assign(v, 0);
  t.present_.assign(v, 0);
  t.special_.assign(v, 0);
  for (const auto& [token, id] : t.vocab_) {
    t.bytes_[id] = text::byte_level_decode(token);
    t.bpe_size_[id] = static_cast<uint32_t>(t.bytes_[id].size());
    t.present_[id] = 1;
  }
  t.passes_.push_back(std::make_unique<Matcher>());
  t.passes_.push_back(std::make_unique<Matcher>());
  for (uint32_t k = 0; k < t.added_.size(); ++k) {
    AddedToken& a = t.added_[k];
    t.added_ids_[a.content] = a.id;
    t.bytes_[a.id] = text::byte_level_decode(a.content);
    t.present_[a.id] = 1;
    t.special_[a.id] = a.special;
    t.passes_[a.normalized ? 1 : 0]->add(t.added_, k);
  }
  return t;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  encode_segment(text, 0, 0, ids, nullptr);
  return ids;
}

Tokenizer::Encoding Tokenizer::encode_with_offsets(std::string_view text) const {
  Encoding e;
  encode_segment(text, 0, 0, e.ids, &e.starts);
  return e;
}

// Cuts the added tokens of pass `pass` out of `text` (which starts at byte `offset` of the input)
// and hands the gaps on to the next pass, the last pass to the pre-tokenizer and BPE.
void Tokenizer::encode_segment(std::string_view text, uint32_t offset, size_t pass,
                               std::vector<int32_t>& ids, std::vector<uint32_t>* starts) const {
  if (pass == passes_.size()) {
    encode_text(text, offset, ids, starts);
    return;
  }
  size_t done = 0, from = 0, pos;
  uint32_t k;
  while (passes_[pass]->find(added_, text, from, &pos, &k)) {
    const AddedToken& tok = added_[k];
    from = pos + tok.content.size();
    size_t begin = pos, end = from;
    if (tok.single_word) {
      const bool alone_left = begin == 0 || !is_word_char(last_codepoint(text.substr(0, begin)));
      const bool alone_right =
          end == text.size() || !is_word_char(first_codepoint(text.substr(end)));
      if (!alone_left || !alone_right) continue;
    }
    if (tok.lstrip) begin = trailing_space_start(text.substr(0, begin));
    if (tok.rstrip) end += leading_space(text.substr(end));
    begin = std::max(begin, done);
    if (done < begin)
      encode_segment(text.substr(done, begin - done), offset + static_cast<uint32_t>(done),
                     pass + 1, ids, starts);
    ids.push_back(tok.id);
    if (starts) starts->push_back(offset + static_cast<uint32_t>(begin));
    done = end;
    from = std::max(from, end);
  }
  if (done < text.size())
    encode_segment(text.substr(done), offset + static_cast<uint32_t>(done), pass + 1, ids, starts);
}

void Tokenizer::encode_text(std::string_view text, uint32_t offset, std::vector<int32_t>& ids,
                            std::vector<uint32_t>* starts) const {
  if (!split_digits_) {
    encode_byte_level(text, offset, ids, starts);
    return;
  }
  // ByteLevel sees each piece on its own: the prefix space, if any, goes before every one.
  thread_local std::vector<text::Piece> parts;
  parts.clear();
  text::split_digits(text, individual_digits_, parts);
  for (const text::Piece& p : parts)
    encode_byte_level(text.substr(p.begin, p.size), offset + p.begin, ids, starts);
}

// The ByteLevel pre-tokenizer (prefix space, GPT-2 split) and BPE on each of its pieces.
void Tokenizer::encode_byte_level(std::string_view text, uint32_t offset, std::vector<int32_t>& ids,
                                  std::vector<uint32_t>* starts) const {
  std::string prefixed;
  uint32_t shift = 0;  // the added prefix space has no byte of its own in the input
  if (add_prefix_space_ && !text.empty() && text[0] != ' ') {
    prefixed.reserve(text.size() + 1);
    prefixed.push_back(' ');
    prefixed.append(text);
    text = prefixed;
    shift = 1;
  }
  thread_local std::vector<text::Piece> pieces;
  pieces.clear();
  if (use_regex_)
    text::split_gpt2(text, pieces);
  else if (!text.empty())
    pieces.push_back({0, static_cast<uint32_t>(text.size())});
  for (const text::Piece& p : pieces) {
    const size_t first = ids.size();
    bpe_->encode_piece(text.substr(p.begin, p.size), ids);
    if (!starts) continue;
    uint32_t at = p.begin;
    for (size_t i = first; i < ids.size(); ++i) {
      starts->push_back(offset + (at > shift ? at - shift : 0));
      at += bpe_size_[ids[i]];
    }
  }
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  std::string raw;
  for (int32_t id : ids) {
    if (skip_special && is_special(id)) continue;
    raw += token_bytes(id);
  }
  return text::utf8_lossy(raw);
}

const std::string& Tokenizer::token_bytes(int32_t id) const {
  MV_CHECK(id >= 0 && id < vocab_size() && present_[id], "tokenizer: id ", id,
           " is not in the vocabulary (size ", vocab_size(), ")");
  return bytes_[id];
}

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && id < vocab_size() && special_[id];
}

std::optional<int32_t> Tokenizer::find_token(std::string_view token) const {
  const std::string key(token);
  if (auto it = added_ids_.find(key); it != added_ids_.end()) return it->second;
  if (auto it = vocab_.find(key); it != vocab_.end()) return it->second;
  return std::nullopt;
}

int32_t Tokenizer::token_to_id(std::string_view token) const {
  std::optional<int32_t> id = find_token(token);
  MV_CHECK(id.has_value(), "tokenizer: token '", token, "' is not in the vocabulary");
  return *id;
}

}  // namespace minivlm
