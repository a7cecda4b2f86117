#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "core/file_check.h"
#include "core/json_file.h"

namespace minivlm {

namespace {

using ordered_json = nlohmann::ordered_json;

// The reference library refuses headers above 100 MB; a real header is a few hundred kB at most, so
// a larger length means a corrupt or foreign file, not a big model.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

struct DTypeCode {
  const char* code;
  DType dtype;
};
constexpr DTypeCode kDTypeCodes[] = {{"F32", DType::f32},   {"F16", DType::f16},
                                     {"BF16", DType::bf16}, {"I32", DType::i32},
                                     {"I64", DType::i64},   {"F64", DType::f64}};

std::string supported_codes() {
  std::string s;
  for (const auto& c : kDTypeCodes) s += (s.empty() ? "" : ", ") + std::string(c.code);
  return s;
}

const char* dtype_code(DType t) {
  for (const auto& c : kDTypeCodes)
    if (c.dtype == t) return c.code;
  MV_FAIL("dtype ", dtype_name(t), " has no safetensors code");
}

// Keeps the file mapped for as long as the file object or any tensor viewing it lives.
struct Mapping {
  void* base = nullptr;
  size_t size = 0;
  ~Mapping() {
    if (base != nullptr) munmap(base, size);
  }
};

struct Entry {
  DType dtype;
  Shape shape;
  uint64_t begin, end;  // relative to the data region
};

// The header and its top-level keys in file order. Plain (map-based) json: ordered_json copies
// values recursively when it grows; and the parse limits the nesting (core/json_file.h), so no
// recursive code meets a hostile deeply nested header. The callback also catches duplicated keys,
// of which the JSON library would silently keep only the last (hiding a tensor).
struct HeaderParse {
  nlohmann::json json;
  std::vector<std::string> keys;
};

HeaderParse parse_header_json(const std::string& path, const char* begin, const char* end) {
  HeaderParse out;
  std::vector<std::set<std::string>> keys_stack;
  std::string duplicate;
  auto callback = [&](int, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    switch (event) {
      case nlohmann::json::parse_event_t::object_start:
        keys_stack.emplace_back();
        break;
      case nlohmann::json::parse_event_t::object_end:
        keys_stack.pop_back();
        break;
      case nlohmann::json::parse_event_t::key: {
        const auto& key = parsed.get_ref<const std::string&>();
        if (!keys_stack.back().insert(key).second && duplicate.empty()) duplicate = key;
        if (keys_stack.size() == 1) out.keys.push_back(key);
        break;
      }
      default:
        break;
    }
    return true;
  };
  try {
    out.json =
        parse_json_limited(std::string_view(begin, static_cast<size_t>(end - begin)), callback);
  } catch (const nlohmann::json::exception& e) {
    MV_FAIL("safetensors file '", path, "': header is not valid JSON (", e.what(), ")");
  }
  MV_CHECK(duplicate.empty(), "safetensors file '", path, "': header repeats the key '", duplicate,
           "'");
  return out;
}

// A JSON value for an error message: short, and never a recursive dump of a hostile nested value.
std::string describe(const nlohmann::json& v) {
  if (!v.is_primitive()) return std::string("a JSON ") + v.type_name();
  std::string s = v.dump();
  return s.size() <= 80 ? s : s.substr(0, 77) + "...";
}

// A short JSON array of primitives (a shape, offsets) as written in the file.
std::string describe_array(const nlohmann::json& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size() && i < 16; ++i) s += (i ? ", " : "") + describe(v[i]);
  return s + (v.size() > 16 ? ", ...]" : "]");
}

// A non-negative JSON integer; `what` names it in the error.
uint64_t json_index(const std::string& path, const nlohmann::json& v, const std::string& what) {
  MV_CHECK(v.is_number_integer(), "safetensors file '", path, "': ", what,
           " is not an integer: ", describe(v));
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    MV_CHECK(u <= static_cast<uint64_t>(INT64_MAX), "safetensors file '", path, "': ", what,
             " is too large: ", u);
    return u;
  }
  const int64_t s = v.get<int64_t>();
  MV_CHECK(s >= 0, "safetensors file '", path, "': ", what, " is negative: ", s);
  return static_cast<uint64_t>(s);
}

Entry parse_entry(const std::string& path, const std::string& name, const nlohmann::json& v) {
  const std::string where = "tensor '" + name + "'";
  MV_CHECK(v.is_object(), "safetensors file '", path, "': ", where,
           " is not an object with dtype, shape and data_offsets but ", describe(v));
  for (const char* field : {"dtype", "shape", "data_offsets"})
    MV_CHECK(v.contains(field), "safetensors file '", path, "': ", where, " has no \"", field,
             "\"");
  Entry e{};
  const auto& dt = v["dtype"];
  MV_CHECK(dt.is_string(), "safetensors file '", path, "': ", where,
           " has a dtype that is not a string: ", describe(dt));
  const std::string code = dt.get<std::string>();
  const auto* known = std::find_if(std::begin(kDTypeCodes), std::end(kDTypeCodes),
                                   [&](const DTypeCode& c) { return code == c.code; });
  MV_CHECK(known != std::end(kDTypeCodes), "safetensors file '", path, "': ", where,
           " has unsupported dtype '", code, "' (supported: ", supported_codes(), ")");
  e.dtype = known->dtype;

  const auto& shape = v["shape"];
  MV_CHECK(shape.is_array(), "safetensors file '", path, "': ", where,
           " has a shape that is not an array: ", describe(shape));
  // Counting zero dims as 1 keeps every stride and byte count of the tensor within int64.
  uint64_t numel = 1, span = dtype_size(e.dtype);
  for (size_t i = 0; i < shape.size(); ++i) {
    const uint64_t d = json_index(path, shape[i], where + " shape[" + std::to_string(i) + "]");
    e.shape.push_back(static_cast<int64_t>(d));
    numel *= d;
    MV_CHECK(!__builtin_mul_overflow(span, std::max<uint64_t>(d, 1), &span) &&
                 span <= static_cast<uint64_t>(INT64_MAX),
             "safetensors file '", path, "': ", where, " shape ", describe_array(shape),
             " is too large");
  }
  const uint64_t nbytes = numel * dtype_size(e.dtype);

  const auto& offs = v["data_offsets"];
  MV_CHECK(offs.is_array() && offs.size() == 2, "safetensors file '", path, "': ", where,
           " data_offsets is not [begin, end] but ",
           offs.is_array() ? describe_array(offs) : describe(offs));
  e.begin = json_index(path, offs[0], where + " data_offsets[0]");
  e.end = json_index(path, offs[1], where + " data_offsets[1]");
  MV_CHECK(e.begin <= e.end, "safetensors file '", path, "': ", where, " data_offsets [", e.begin,
           ", ", e.end, "] end before they begin");
  MV_CHECK(e.end - e.begin == nbytes, "safetensors file '", path, "': ", where, " data_offsets [",
           e.begin, ", ", e.end, "] span ", e.end - e.begin, " bytes but ", code,
           describe_array(shape), " needs ", nbytes);
  return e;
}

std::map<std::string, std::string> parse_metadata(const std::string& path,
                                                  const nlohmann::json& v) {
  MV_CHECK(v.is_object(), "safetensors file '", path, "': __metadata__ is not an object but ",
           describe(v));
  std::map<std::string, std::string> out;
  for (const auto& [k, val] : v.items()) {
    MV_CHECK(val.is_string(), "safetensors file '", path, "': __metadata__ value of '", k,
             "' is not a string: ", describe(val));
    out[k] = val.get<std::string>();
  }
  return out;
}

// Offsets sorted by position must tile [0, data_size) exactly, as the reference reader demands.
void check_coverage(const std::string& path, const std::vector<std::string>& names,
                    const std::map<std::string, Entry>& entries, uint64_t data_size) {
  std::vector<const std::string*> order;
  for (const auto& n : names) order.push_back(&n);
  std::stable_sort(order.begin(), order.end(), [&](const std::string* a, const std::string* b) {
    const Entry &ea = entries.at(*a), &eb = entries.at(*b);
    return std::tie(ea.begin, ea.end) < std::tie(eb.begin, eb.end);
  });
  uint64_t pos = 0;
  const std::string* prev = nullptr;
  for (const std::string* n : order) {
    const Entry& e = entries.at(*n);
    MV_CHECK(e.begin <= pos, "safetensors file '", path, "': gap of ", e.begin - pos,
             " bytes before tensor '", *n, "' (data_offsets begin at ", e.begin,
             ", previous data ends at ", pos, ")");
    MV_CHECK(e.begin == pos, "safetensors file '", path, "': tensor '", *n, "' overlaps tensor '",
             prev ? *prev : "", "' (begins at ", e.begin, ", which ends at ", pos, ")");
    pos = e.end;
    prev = n;
  }
  MV_CHECK(pos == data_size, "safetensors file '", path, "': tensors cover ", pos,
           " bytes of data but the data region after the header is ", data_size,
           " bytes (truncated file or trailing bytes)");
}

}  // namespace

struct SafeTensorsFile::State {
  std::string path;
  std::shared_ptr<Mapping> mapping;
  const char* data = nullptr;  // start of the data region
  std::vector<std::string> names;
  std::map<std::string, Entry> entries;
  std::map<std::string, std::string> metadata;

  const Entry& entry(const std::string& name) const {
    auto it = entries.find(name);
    MV_CHECK(it != entries.end(), "safetensors file '", path, "' has no tensor '", name, "'");
    return it->second;
  }
};

SafeTensorsFile SafeTensorsFile::open(const std::string& path) {
  auto st = std::make_shared<State>();
  st->path = path;
  // By name first: opening a FIFO would wait for a writer.
  require_regular_file(path, "safetensors file");
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  MV_CHECK(fd >= 0, "cannot open safetensors file '", path, "': ", std::strerror(errno));
  struct stat sb {};
  const int stat_rc = fstat(fd, &sb);
  const int stat_errno = errno;
  if (stat_rc != 0 || !S_ISREG(sb.st_mode)) {
    ::close(fd);
    MV_CHECK(stat_rc == 0, "cannot stat safetensors file '", path,
             "': ", std::strerror(stat_errno));
    MV_FAIL("safetensors file '", path, "' is not a regular file");
  }
  const uint64_t file_size = static_cast<uint64_t>(sb.st_size);
  if (file_size < 8) {
    ::close(fd);
    MV_CHECK(file_size > 0, "safetensors file '", path, "' is empty");
    MV_FAIL("safetensors file '", path, "' is ", file_size,
            " bytes, shorter than its 8-byte header length");
  }
  // Private writable pages: a caller that writes into a tensor gets copy-on-write pages instead of
  // a crash, and the file on disk never changes.
  void* base = mmap(nullptr, file_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  const int map_errno = errno;
  ::close(fd);
  MV_CHECK(base != MAP_FAILED, "cannot map safetensors file '", path,
           "': ", std::strerror(map_errno));
  st->mapping = std::make_shared<Mapping>();
  st->mapping->base = base;
  st->mapping->size = file_size;

  const auto* bytes = static_cast<const unsigned char*>(base);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];
  MV_CHECK(header_len <= kMaxHeaderBytes, "safetensors file '", path, "': header length ",
           header_len, " is absurdly large (limit ", kMaxHeaderBytes, "); not a safetensors file?");
  MV_CHECK(header_len <= file_size - 8, "safetensors file '", path, "': header length ", header_len,
           " exceeds the ", file_size - 8, " bytes after the length field (truncated file?)");

  const char* header = static_cast<const char*>(base) + 8;
  HeaderParse parsed = parse_header_json(path, header, header + header_len);
  MV_CHECK(parsed.json.is_object(), "safetensors file '", path,
           "': header is not a JSON object but ", parsed.json.type_name());
  for (const std::string& name : parsed.keys) {
    const auto& value = parsed.json.at(name);
    if (name == "__metadata__") {
      st->metadata = parse_metadata(path, value);
      continue;
    }
    st->entries.emplace(name, parse_entry(path, name, value));
    st->names.push_back(name);
  }
  check_coverage(path, st->names, st->entries, file_size - 8 - header_len);
  st->data = header + header_len;

  SafeTensorsFile f;
  f.state_ = std::move(st);
  return f;
}

const std::vector<std::string>& SafeTensorsFile::names() const { return state_->names; }

bool SafeTensorsFile::contains(const std::string& name) const {
  return state_->entries.count(name) > 0;
}

DType SafeTensorsFile::dtype(const std::string& name) const { return state_->entry(name).dtype; }

const Shape& SafeTensorsFile::shape(const std::string& name) const {
  return state_->entry(name).shape;
}

Tensor SafeTensorsFile::get(const std::string& name) const {
  const Entry& e = state_->entry(name);
  const char* p = state_->data + e.begin;
  const size_t nbytes = e.end - e.begin;
  const size_t align = dtype_size(e.dtype);
  // Writers that do not order tensors by alignment leave some misaligned; typed access to those
  // would be undefined, so they are copied instead of viewed.
  if (reinterpret_cast<uintptr_t>(p) % align != 0) {
    Tensor t = Tensor::empty(e.shape, e.dtype, kCPU);
    std::memcpy(t.raw_data(), p, nbytes);
    return t;
  }
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = Storage::borrow(const_cast<char*>(p), nbytes, kCPU, state_->mapping);
  impl->shape = e.shape;
  impl->strides = contiguous_strides(e.shape);
  impl->dtype = e.dtype;
  impl->name = name;
  return Tensor(std::move(impl));
}

const std::map<std::string, std::string>& SafeTensorsFile::metadata() const {
  return state_->metadata;
}

const std::string& SafeTensorsFile::path() const { return state_->path; }

namespace {

// Writes all of `n` bytes, retrying short writes; throws naming `path` on failure.
void write_all(int fd, const char* p, size_t n, const std::string& path) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    MV_CHECK(w > 0, "cannot write '", path, "': ", std::strerror(errno));
    p += w;
    n -= static_cast<size_t>(w);
  }
}

// Makes the rename itself durable: without syncing the directory a crash may forget it.
void fsync_parent_dir(const std::string& path) {
  const auto slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

std::string build_header(const std::string& path,
                         const std::vector<std::pair<std::string, Tensor>>& tensors,
                         const std::map<std::string, std::string>& metadata) {
  ordered_json header = ordered_json::object();
  if (!metadata.empty()) {
    ordered_json meta = ordered_json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header["__metadata__"] = std::move(meta);
  }
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    MV_CHECK(name != "__metadata__", "cannot save '", path,
             "': '__metadata__' is reserved and cannot name a tensor");
    MV_CHECK(!header.contains(name), "cannot save '", path, "': tensor name '", name,
             "' appears twice");
    MV_CHECK(t.defined(), "cannot save '", path, "': tensor '", name, "' is undefined");
    ordered_json entry = ordered_json::object();
    entry["dtype"] = dtype_code(t.dtype());
    entry["shape"] = t.shape();
    entry["data_offsets"] = ordered_json::array({offset, offset + t.nbytes()});
    offset += t.nbytes();
    header[name] = std::move(entry);
  }
  std::string s;
  try {
    s = header.dump();
  } catch (const ordered_json::exception& e) {
    MV_FAIL("cannot save '", path, "': header is not valid UTF-8 JSON (", e.what(), ")");
  }
  s.append((8 - s.size() % 8) % 8, ' ');
  return s;
}

}  // namespace

void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  const std::string header = build_header(path, tensors, metadata);
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  MV_CHECK(fd >= 0, "cannot create '", tmp, "': ", std::strerror(errno));
  try {
    unsigned char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(header.size() >> (8 * i));
    write_all(fd, reinterpret_cast<const char*>(len), 8, tmp);
    write_all(fd, header.data(), header.size(), tmp);
    for (const auto& [name, t] : tensors) {
      if (t.numel() == 0) continue;
      Tensor host = t;
      if (!t.device().is_cpu() || !t.is_contiguous()) {
        host = Tensor::empty(t.shape(), t.dtype(), kCPU);
        host.copy_(t);
      }
      write_all(fd, static_cast<const char*>(host.raw_data()), host.nbytes(), tmp);
    }
    MV_CHECK(::fsync(fd) == 0, "cannot sync '", tmp, "': ", std::strerror(errno));
    const int rc = ::close(fd);
    fd = -1;
    MV_CHECK(rc == 0, "cannot close '", tmp, "': ", std::strerror(errno));
    MV_CHECK(::rename(tmp.c_str(), path.c_str()) == 0, "cannot rename '", tmp, "' to '", path,
             "': ", std::strerror(errno));
  } catch (...) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  fsync_parent_dir(path);
}

}  // namespace minivlm
