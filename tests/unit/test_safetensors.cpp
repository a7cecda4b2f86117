// safetensors: reading files written by the reference library, writing files it reads (byte for
// byte), round trips, and validation that turns every malformed file into a clean minivlm::Error.
#include "io/safetensors.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

namespace minivlm {
namespace {

namespace fs = std::filesystem;
const std::string kGoldens = MINIVLM_SOURCE_DIR "/tests/goldens/safetensors/";

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(f.good()) << path;
  return std::string(std::istreambuf_iterator<char>(f), {});
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A fresh directory per test, so tests can run in parallel.
std::string temp_dir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  fs::path dir = fs::path(::testing::TempDir()) /
                 ("minivlm_st_" + std::to_string(::getpid()) + "_" + info->name());
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

// The raw bytes of a contiguous CPU tensor.
std::string bytes_of(const Tensor& t) {
  EXPECT_TRUE(t.is_contiguous());
  return std::string(static_cast<const char*>(t.raw_data()), t.nbytes());
}

// u64 little-endian length + header (+ data); `len` overrides the stored length.
std::string file_bytes(const std::string& header, const std::string& data = "", int64_t len = -1) {
  const uint64_t n = len < 0 ? header.size() : static_cast<uint64_t>(len);
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(n >> (8 * i));
  return out + header + data;
}

// The error open() throws, or "" when the file is accepted. Anything other than minivlm::Error
// escapes and fails the test.
std::string open_error(const std::string& path) {
  try {
    SafeTensorsFile::open(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Opens and, if accepted, reads every tensor (so fuzzed files exercise the views too).
void open_and_touch(const std::string& path) {
  try {
    auto f = SafeTensorsFile::open(path);
    for (const auto& n : f.names()) {
      Tensor t = f.get(n);
      ASSERT_EQ(t.shape(), f.shape(n));
      (void)t.to_double_vector();
    }
  } catch (const Error&) {
  }
}

Tensor half_tensor(const std::vector<uint16_t>& bits, const Shape& shape, DType dtype) {
  Tensor t = Tensor::empty(shape, dtype);
  if (!bits.empty()) std::memcpy(t.raw_data(), bits.data(), bits.size() * 2);
  return t;
}

TEST(SafeTensorsGolden, ReadsEveryDTypeWrittenByTheReferenceLibrary) {
  const auto expect = nlohmann::json::parse(read_bytes(kGoldens + "all_dtypes.json"));
  auto f = SafeTensorsFile::open(kGoldens + "all_dtypes.safetensors");
  EXPECT_EQ(f.names(), expect["header_order"].get<std::vector<std::string>>());
  EXPECT_EQ(f.metadata(), (expect["metadata"].get<std::map<std::string, std::string>>()));
  EXPECT_EQ(f.metadata().at("note"), "ünïcode ✓");
  const std::map<std::string, DType> codes = {{"F32", DType::f32},   {"F16", DType::f16},
                                              {"BF16", DType::bf16}, {"I32", DType::i32},
                                              {"I64", DType::i64},   {"F64", DType::f64}};
  std::set<DType> seen;
  for (const auto& [name, e] : expect["tensors"].items()) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(f.contains(name));
    const DType dt = codes.at(e["dtype"].get<std::string>());
    seen.insert(dt);
    EXPECT_EQ(f.dtype(name), dt);
    EXPECT_EQ(f.shape(name), e["shape"].get<Shape>());
    Tensor t = f.get(name);
    EXPECT_EQ(t.dtype(), dt);
    EXPECT_EQ(t.shape(), e["shape"].get<Shape>());
    if (is_floating(dt)) {
      EXPECT_EQ(t.to_double_vector(), e["values"].get<std::vector<double>>());
    } else {
      EXPECT_EQ(t.to_int_vector(), e["values"].get<std::vector<int64_t>>());
    }
  }
  EXPECT_EQ(seen.size(), codes.size());
  EXPECT_EQ(f.shape("scalar"), Shape{});
  EXPECT_EQ(f.get("scalar").item(), 3.25);
  EXPECT_EQ(f.get("empty").numel(), 0);
  EXPECT_FALSE(f.contains("missing"));
  try {
    f.get("missing");
    FAIL() << "get of a missing tensor must throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no tensor 'missing'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("all_dtypes.safetensors"), std::string::npos);
  }
}

TEST(SafeTensorsGolden, TensorsViewTheMappingAndOutliveTheFileObject) {
  const std::string path = kGoldens + "all_dtypes.safetensors";
  const std::string file = read_bytes(path);
  Tensor f32, i64;
  {
    auto f = SafeTensorsFile::open(path);
    f32 = f.get("f32");
    i64 = f.get("i64");
    // Zero-copy: both gets alias the same mapped bytes, borrowed rather than owned.
    EXPECT_EQ(f.get("f32").raw_data(), f32.raw_data());
    EXPECT_NE(f32.storage()->owner, nullptr);
  }
  // The file object is gone; the tensors keep the mapping alive and still read the file's bytes.
  const uint64_t header_len = *reinterpret_cast<const uint64_t*>(file.data());
  const auto header = nlohmann::json::parse(file.substr(8, header_len));
  const uint64_t begin = header["f32"]["data_offsets"][0];
  EXPECT_EQ(bytes_of(f32), file.substr(8 + header_len + begin, 60));
  EXPECT_EQ(i64.to_int_vector()[3], INT64_MAX);
}

TEST(SafeTensorsInterop, WriterMatchesReferenceBytes) {
  auto golden = SafeTensorsFile::open(kGoldens + "all_dtypes.safetensors");
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const auto& n : golden.names()) tensors.emplace_back(n, golden.get(n));
  // Left in the build tree for scripts/reference/safetensors_goldens.py --check.
  const std::string out = MINIVLM_BIN_DIR "/../tests/written_by_minivlm.safetensors";
  save_safetensors(out, tensors, {{"format", "pt"}});
  EXPECT_EQ(read_bytes(out), read_bytes(kGoldens + "interop.safetensors"));
}

TEST(SafeTensorsWrite, RoundTripsEveryDTypeScalarsAndEmptyTensors) {
  const std::string path = temp_dir() + "/model.safetensors";
  std::vector<std::pair<std::string, Tensor>> tensors = {
      {"f32",
       Tensor::from_vector(std::vector<float>{1.5f, -2.25f, 1e-30f, 3e38f, 0.f, -0.f}, {2, 3})},
      {"bf16", half_tensor({0x3f80, 0xc049, 0x0001, 0x7f80, 0xff80}, {5}, DType::bf16)},
      {"f16", half_tensor({0x3c00, 0x0001, 0xfbff}, {3, 1}, DType::f16)},
      {"i32", Tensor::from_vector(std::vector<int32_t>{INT32_MIN, -1, 7}, {3})},
      {"i64", Tensor::from_vector(std::vector<int64_t>{INT64_MIN, 1LL << 40}, {1, 2})},
      {"f64", Tensor::from_vector(std::vector<double>{1.0 / 3, -1e300}, {2})},
      {"scalar_i64", Tensor::from_vector(std::vector<int64_t>{-5}, {})},
      {"scalar_f32", Tensor::from_vector(std::vector<float>{0.125f}, {})},
      {"empty_f16", Tensor::empty({0}, DType::f16)},
      {"empty_2d", Tensor::empty({3, 0}, DType::i32)},
  };
  const std::map<std::string, std::string> meta = {{"format", "pt"}, {"step", "100"}, {"", ""}};
  save_safetensors(path, tensors, meta);
  EXPECT_FALSE(fs::exists(path + ".tmp"));

  auto f = SafeTensorsFile::open(path);
  ASSERT_EQ(f.names().size(), tensors.size());
  EXPECT_EQ(f.metadata(), meta);
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& [name, t] = tensors[i];
    SCOPED_TRACE(name);
    EXPECT_EQ(f.names()[i], name);  // written in the given order
    Tensor r = f.get(name);
    EXPECT_EQ(r.dtype(), t.dtype());
    EXPECT_EQ(r.shape(), t.shape());
    EXPECT_EQ(bytes_of(r), bytes_of(t));
  }
}

TEST(SafeTensorsWrite, NonContiguousViewsAreStoredContiguous) {
  const std::string path = temp_dir() + "/views.safetensors";
  std::vector<float> v(12);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i) + 0.5f;
  Tensor base = Tensor::from_vector(v, {3, 4});            // [3, 4]
  Tensor transposed = make_view(base, {4, 3}, {1, 4}, 0);  // [4, 3], base.T
  Tensor column = make_view(base, {3}, {4}, 2);            // base[:, 2]
  std::vector<uint16_t> hbits(12);
  for (size_t i = 0; i < hbits.size(); ++i) hbits[i] = static_cast<uint16_t>(0x3c00 + i);
  Tensor hbase = half_tensor(hbits, {2, 6}, DType::bf16);
  Tensor hstrided = make_view(hbase, {2, 3}, {6, 2}, 1);  // hbase[:, 1::2]
  ASSERT_FALSE(transposed.is_contiguous());
  ASSERT_FALSE(column.is_contiguous());
  ASSERT_FALSE(hstrided.is_contiguous());
  save_safetensors(path, {{"t", transposed}, {"col", column}, {"h", hstrided}});

  auto f = SafeTensorsFile::open(path);
  EXPECT_EQ(f.shape("t"), (Shape{4, 3}));
  std::vector<float> expect_t;
  for (int j = 0; j < 4; ++j)
    for (int i = 0; i < 3; ++i) expect_t.push_back(v[i * 4 + j]);
  EXPECT_EQ(f.get("t").to_float_vector(), expect_t);
  EXPECT_EQ(f.get("col").to_float_vector(), (std::vector<float>{2.5f, 6.5f, 10.5f}));
  const Tensor h = f.get("h");
  std::vector<uint16_t> got(6);
  std::memcpy(got.data(), h.raw_data(), 12);
  EXPECT_EQ(got, (std::vector<uint16_t>{0x3c01, 0x3c03, 0x3c05, 0x3c07, 0x3c09, 0x3c0b}));
}

TEST(SafeTensorsWrite, HeaderIsSpacePaddedToEightBytes) {
  const std::string dir = temp_dir();
  // Names of every length mod 8, so every amount of padding occurs.
  for (int extra = 0; extra < 8; ++extra) {
    const std::string path = dir + "/pad.safetensors";
    const std::string name = "w" + std::string(static_cast<size_t>(extra), 'x');
    save_safetensors(path, {{name, Tensor::from_vector(std::vector<float>{7.f}, {1})}});
    const std::string b = read_bytes(path);
    const uint64_t n = *reinterpret_cast<const uint64_t*>(b.data());
    EXPECT_EQ(n % 8, 0u);
    ASSERT_EQ(b.size(), 8 + n + 4);
    const std::string header = b.substr(8, n);
    const size_t close = header.find_last_of('}');
    EXPECT_EQ(header.substr(close + 1), std::string(n - close - 1, ' '));
    EXPECT_LT(n - close - 1, 8u);
    EXPECT_EQ(header.substr(0, close + 1),
              "{\"" + name + "\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}");
  }
}

TEST(SafeTensorsWrite, ReplacesAtomicallyAndReportsErrors) {
  const std::string dir = temp_dir();
  const std::string path = dir + "/m.safetensors";
  write_bytes(path, "old contents");
  write_bytes(path + ".tmp", "stale temporary from a killed save");
  save_safetensors(path, {{"a", Tensor::from_vector(std::vector<int32_t>{1, 2}, {2})}});
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  EXPECT_EQ(SafeTensorsFile::open(path).get("a").to_int_vector(), (std::vector<int64_t>{1, 2}));

  auto save_error = [](const std::string& p, const std::vector<std::pair<std::string, Tensor>>& t,
                       const std::map<std::string, std::string>& m = {}) -> std::string {
    try {
      save_safetensors(p, t, m);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  const Tensor one = Tensor::from_vector(std::vector<float>{1.f}, {1});
  EXPECT_NE(save_error(dir + "/no/such/dir/m.safetensors", {{"a", one}}).find("no/such/dir"),
            std::string::npos);
  EXPECT_NE(save_error(path, {{"a", one}, {"a", one}}).find("'a' appears twice"),
            std::string::npos);
  EXPECT_NE(save_error(path, {{"__metadata__", one}}).find("reserved"), std::string::npos);
  EXPECT_NE(save_error(path, {{"a", Tensor()}}).find("'a' is undefined"), std::string::npos);
  EXPECT_NE(save_error(path, {{"a", one}}, {{"k", "\xff"}}).find("UTF-8"), std::string::npos);
  // A failed save leaves the previous file as it was, and no temporary behind.
  EXPECT_EQ(SafeTensorsFile::open(path).get("a").to_int_vector(), (std::vector<int64_t>{1, 2}));
  EXPECT_FALSE(fs::exists(path + ".tmp"));
}

TEST(SafeTensorsRead, MisalignedTensorsAreCopiedNotViewed) {
  // An f16 of one element puts the f32 after it at an odd 2-byte offset.
  const std::string path = temp_dir() + "/mis.safetensors";
  const std::string header = R"({"h":{"dtype":"F16","shape":[1],"data_offsets":[0,2]},)"
                             R"("f":{"dtype":"F32","shape":[2],"data_offsets":[2,10]}})";
  std::string data(10, '\0');
  const float fv[2] = {1.25f, -8.f};
  std::memcpy(&data[2], fv, 8);
  write_bytes(path, file_bytes(header, data));
  auto f = SafeTensorsFile::open(path);
  const Tensor t = f.get("f");
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw_data()) % 4, 0u);
  EXPECT_EQ(t.to_float_vector(), (std::vector<float>{1.25f, -8.f}));
}

struct BadFile {
  const char* what;
  std::string bytes;
  const char* message;  // must appear in the error
};

TEST(SafeTensorsRead, MalformedFilesGiveErrorsNamingFileAndProblem) {
  const std::string dir = temp_dir();
  const std::string ok = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  const std::string d8(8, '\x01');
  const std::vector<BadFile> cases = {
      {"zero-length file", "", "is empty"},
      {"shorter than the length field", std::string("\x10\x00\x00", 3),
       "shorter than its 8-byte header length"},
      {"absurd header length", file_bytes("{}", "", 1LL << 40), "absurdly large"},
      {"header beyond the file", file_bytes("{}", "", 64), "exceeds the 2 bytes"},
      {"empty header", file_bytes(""), "not valid JSON"},
      {"not JSON", file_bytes("{\"a\": nope}"), "not valid JSON"},
      {"truncated JSON", file_bytes("{\"a\":{\"dtype\""), "not valid JSON"},
      {"invalid UTF-8", file_bytes("{\"\xff\":1}"), "not valid JSON"},
      {"not an object", file_bytes("[1,2]"), "not a JSON object but array"},
      {"entry not an object", file_bytes(R"({"a":3})"), "tensor 'a' is not an object"},
      {"missing dtype", file_bytes(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", d8),
       "tensor 'a' has no \"dtype\""},
      {"missing shape", file_bytes(R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", d8),
       "has no \"shape\""},
      {"missing offsets", file_bytes(R"({"a":{"dtype":"F32","shape":[2]}})", d8),
       "has no \"data_offsets\""},
      {"dtype not a string",
       file_bytes(R"({"a":{"dtype":4,"shape":[2],"data_offsets":[0,8]}})", d8),
       "dtype that is not a string: 4"},
      {"unknown dtype", file_bytes(R"({"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}})", d8),
       "unsupported dtype 'U8' (supported: F32, F16, BF16, I32, I64, F64)"},
      {"shape not an array",
       file_bytes(R"({"a":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", d8),
       "shape that is not an array: 2"},
      {"fractional dim",
       file_bytes(R"({"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", d8),
       "shape[0] is not an integer: 2.5"},
      {"negative dim",
       file_bytes(R"({"a":{"dtype":"F32","shape":[2,-1],"data_offsets":[0,8]}})", d8),
       "tensor 'a' shape[1] is negative: -1"},
      {"overflowing shape",
       file_bytes(
           R"({"a":{"dtype":"F32","shape":[0,4611686018427387904,4],"data_offsets":[0,0]}})"),
       "is too large"},
      {"offsets not a pair",
       file_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4,8]}})", d8),
       "data_offsets is not [begin, end]"},
      {"offsets reversed",
       file_bytes(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", d8),
       "data_offsets [8, 0] end before they begin"},
      {"offsets do not match dtype size x numel",
       file_bytes(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", d8),
       "data_offsets [0, 8] span 8 bytes but F32[3] needs 12"},
      {"gap",
       file_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                  R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                  std::string(12, '\0')),
       "gap of 4 bytes before tensor 'b'"},
      {"overlap",
       file_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                  R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                  d8),
       "tensor 'b' overlaps tensor 'a'"},
      {"not starting at zero",
       file_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", d8),
       "gap of 4 bytes before tensor 'a'"},
      {"trailing bytes", file_bytes("{" + ok + "}", d8 + "xx"),
       "tensors cover 8 bytes of data but the data region after the header is 10 bytes"},
      {"truncated data", file_bytes("{" + ok + "}", "abc"),
       "tensors cover 8 bytes of data but the data region after the header is 3 bytes"},
      {"duplicate tensor", file_bytes("{" + ok + "," + ok + "}", d8), "repeats the key 'a'"},
      {"duplicate field",
       file_bytes(R"({"a":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}})", d8),
       "repeats the key 'dtype'"},
      {"metadata not an object", file_bytes(R"({"__metadata__":[1]})"),
       "__metadata__ is not an object but a JSON array"},
      {"metadata value not a string", file_bytes(R"({"__metadata__":{"step":100}})"),
       "__metadata__ value of 'step' is not a string: 100"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].what);
    const std::string path = dir + "/bad_" + std::to_string(i) + ".safetensors";
    write_bytes(path, cases[i].bytes);
    const std::string err = open_error(path);
    EXPECT_NE(err.find(cases[i].message), std::string::npos) << err;
    EXPECT_NE(err.find(path), std::string::npos) << err;
  }
  EXPECT_NE(open_error(dir + "/absent.safetensors").find("cannot open"), std::string::npos);
  EXPECT_NE(open_error(dir).find("not a regular file"), std::string::npos);
  // The valid variants of the same bytes are accepted: the cases fail for the stated reason.
  write_bytes(dir + "/good.safetensors", file_bytes("{" + ok + "}", d8));
  EXPECT_EQ(open_error(dir + "/good.safetensors"), "");
}

TEST(SafeTensorsRead, DeeplyNestedHeaderIsAnErrorNotAStackOverflow) {
  const std::string path = temp_dir() + "/deep.safetensors";
  const size_t depth = 200000;
  const std::string header = R"({"a":{"dtype":"F32","shape":)" + std::string(depth, '[') +
                             std::string(depth, ']') + R"(,"data_offsets":[0,0]}})";
  write_bytes(path, file_bytes(header));
  EXPECT_NE(open_error(path).find("header is not valid JSON"), std::string::npos);
  EXPECT_NE(open_error(path).find("nested more than 128 deep"), std::string::npos);
}

TEST(SafeTensorsRead, EveryTruncationIsACleanError) {
  const std::string dir = temp_dir();
  const std::string full = read_bytes(kGoldens + "all_dtypes.safetensors");
  const std::string path = dir + "/cut.safetensors";
  for (size_t len = 0; len < full.size(); ++len) {
    write_bytes(path, full.substr(0, len));
    EXPECT_NE(open_error(path), "") << "truncated to " << len << " of " << full.size();
  }
  write_bytes(path, full);
  EXPECT_EQ(open_error(path), "");
}

TEST(SafeTensorsRead, HeaderByteFlipsNeverCrash) {
  const std::string dir = temp_dir();
  const std::string full = read_bytes(kGoldens + "all_dtypes.safetensors");
  const uint64_t header_len = *reinterpret_cast<const uint64_t*>(full.data());
  const std::string path = dir + "/flip.safetensors";
  std::mt19937_64 rng(7);
  int accepted = 0, rejected = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string b = full;
    const int flips = 1 + static_cast<int>(rng() % 3);
    for (int k = 0; k < flips; ++k)
      b[8 + rng() % header_len] ^= static_cast<char>(1u << (rng() % 8));
    write_bytes(path, b);
    if (open_error(path).empty()) {
      ++accepted;
      open_and_touch(path);
    } else {
      ++rejected;
    }
  }
  // Flips in padding, names or metadata values may keep a file valid; most must be caught.
  EXPECT_GT(rejected, 1000);
  EXPECT_GT(accepted, 0);
}

TEST(SafeTensorsRead, FuzzedFilesNeverCrash) {
  const std::string dir = temp_dir();
  const std::string full = read_bytes(kGoldens + "all_dtypes.safetensors");
  const std::string path = dir + "/fuzz.safetensors";
  // JSON fragments that steer mutations towards the validator's corners.
  const std::vector<std::string> tokens = {"{",
                                           "}",
                                           "[",
                                           "]",
                                           ",",
                                           ":",
                                           "\"",
                                           "-1",
                                           "0",
                                           "18446744073709551615",
                                           "9223372036854775807",
                                           "1e400",
                                           "null",
                                           "true",
                                           "\"F32\"",
                                           "\"BF16\"",
                                           "\"dtype\"",
                                           "\"shape\"",
                                           "\"data_offsets\"",
                                           "\"__metadata__\"",
                                           "\\u0000",
                                           "\\ud800"};
  std::mt19937_64 rng(11);
  for (int iter = 0; iter < 4000; ++iter) {
    std::string b = full;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < edits && !b.empty(); ++k) {
      const size_t pos = rng() % b.size();
      switch (rng() % 5) {
        case 0:
          b[pos] = static_cast<char>(rng());
          break;  // overwrite
        case 1:
          b.erase(pos, 1 + rng() % 16);
          break;  // delete
        case 2:
          b.insert(pos, tokens[rng() % tokens.size()]);
          break;  // insert token
        case 3:
          b[rng() % 8] = static_cast<char>(rng());
          break;  // length field
        default:
          b.replace(std::min<size_t>(pos, 8 + rng() % 600), 1, tokens[rng() % tokens.size()]);
      }
    }
    write_bytes(path, b);
    open_and_touch(path);
  }
}

}  // namespace
}  // namespace minivlm
