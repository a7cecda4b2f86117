// MiniMind-V parquet datasets through Apache Arrow's parquet reader (data/parquet_source.h).
//
// Random access without decoding whole row groups: at open, each column chunk is streamed once
// through a parquet::PageReader, one page at a time, recording for every data page the file offset
// of its header (where the reader last peeked: it peeks at each header before parsing it), the
// values before it, the rows that start before it (values for a flat column; data page V2 states
// its rows; a list column's V1 page counts its repetition levels of 0) and whether it is
// dictionary-encoded. Reading row i opens a PageReader over a stream of the chunk's dictionary page
// (only when row i's page is dictionary-encoded) followed by the bytes from row i's page to the
// chunk's end, and a ColumnReader that skips to the row within that page: one page decoded per
// column and access, read through a 64 KiB buffer.
#include "data/parquet_source.h"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/file_check.h"

#if MINIVLM_HAVE_PARQUET
#include <sys/mman.h>

#include <atomic>
#include <cstring>

#include <arrow/buffer.h>
#include <arrow/io/buffered.h>
#include <arrow/io/file.h>
#include <arrow/io/interfaces.h>
#include <arrow/memory_pool.h>
#include <parquet/column_page.h>
#include <parquet/column_reader.h>
#include <parquet/exception.h>
#include <parquet/file_reader.h>
#include <parquet/metadata.h>
#include <parquet/properties.h>
#include <parquet/schema.h>
#include <parquet/types.h>
#endif

namespace minivlm {

#if !MINIVLM_HAVE_PARQUET

bool parquet_supported() { return false; }

std::unique_ptr<RecordSource> open_parquet_source(const std::string& path) {
  MV_FAIL("cannot read dataset ", path,
          ": minivlm was built without parquet support (no pyarrow found at configure time); run "
          "scripts/setup.sh, which installs pyarrow into .venv, then reconfigure and rebuild");
}

#else

bool parquet_supported() { return true; }

namespace {

using arrow::Result;
using arrow::Status;

// Bytes buffered ahead of the page reader: page headers are parsed from this buffer and page bodies
// larger than it are read directly, so a read never holds more than its page.
constexpr int64_t kStreamBuffer = 64 * 1024;

// The reader's buffers (compressed and decompressed pages, dictionaries) are page-sized and live
// for one access. Through malloc, freed ones stay in the worker threads' arenas (glibc raises its
// mmap threshold to the largest freed block), so resident memory would wander with page sizes and
// thread timing; mapped directly, a buffer's memory returns to the system when it is freed.
//
// No buffer is larger than kMaxBuffer: a page's header gives its uncompressed size, and a hostile
// page (a zstd or gzip bomb: kilobytes that inflate to gigabytes) would otherwise be decompressed
// whole. A real page holds a few images at most.
class PagePool : public arrow::MemoryPool {
 public:
  static constexpr int64_t kMapped = 128 * 1024;  // smaller buffers go through malloc
  static constexpr int64_t kMaxBuffer = int64_t{512} << 20;

  arrow::Status Allocate(int64_t size, int64_t alignment, uint8_t** out) override {
    if (size > kMaxBuffer)
      return arrow::Status::OutOfMemory("a page buffer of ", size, " bytes (over the limit of ",
                                        kMaxBuffer, ")");
    if (size < kMapped) return small()->Allocate(size, alignment, out);
    void* p = ::mmap(nullptr, static_cast<size_t>(size), PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return arrow::Status::OutOfMemory("cannot map ", size, " bytes");
    *out = static_cast<uint8_t*>(p);
    count(size);
    return arrow::Status::OK();
  }

  arrow::Status Reallocate(int64_t old_size, int64_t new_size, int64_t alignment,
                           uint8_t** ptr) override {
    if (old_size < kMapped && new_size < kMapped)
      return small()->Reallocate(old_size, new_size, alignment, ptr);
    uint8_t* fresh = nullptr;
    ARROW_RETURN_NOT_OK(Allocate(new_size, alignment, &fresh));
    std::memcpy(fresh, *ptr, static_cast<size_t>(std::min(old_size, new_size)));
    Free(*ptr, old_size, alignment);
    *ptr = fresh;
    return arrow::Status::OK();
  }

  void Free(uint8_t* buffer, int64_t size, int64_t alignment) override {
    if (size < kMapped) return small()->Free(buffer, size, alignment);
    ::munmap(buffer, static_cast<size_t>(size));
    bytes_.fetch_sub(size, std::memory_order_relaxed);
  }

  int64_t bytes_allocated() const override { return bytes_.load(std::memory_order_relaxed); }
  int64_t total_bytes_allocated() const override { return total_.load(std::memory_order_relaxed); }
  int64_t num_allocations() const override { return count_.load(std::memory_order_relaxed); }
  std::string backend_name() const override { return "minivlm-mmap"; }

 private:
  static arrow::MemoryPool* small() { return arrow::system_memory_pool(); }
  void count(int64_t size) {
    bytes_.fetch_add(size, std::memory_order_relaxed);
    total_.fetch_add(size, std::memory_order_relaxed);
    count_.fetch_add(1, std::memory_order_relaxed);
  }
  std::atomic<int64_t> bytes_{0}, total_{0}, count_{0};
};

arrow::MemoryPool* pool() {
  static PagePool p;
  return &p;
}

// A forward stream over byte ranges of a file, read with the file's thread-safe ReadAt.
class RangesStream : public arrow::io::InputStream {
 public:
  RangesStream(std::shared_ptr<arrow::io::RandomAccessFile> file,
               std::vector<std::pair<int64_t, int64_t> > ranges)
      : file_(std::move(file)), ranges_(std::move(ranges)) {}

  Status Close() override {
    closed_ = true;
    return Status::OK();
  }
  bool closed() const override { return closed_; }
  Result<int64_t> Tell() const override { return pos_; }

  Result<int64_t> Read(int64_t nbytes, void* out) override {
    int64_t done = 0;
    while (done < nbytes && range_ < ranges_.size()) {
      const auto [offset, length] = ranges_[range_];
      const int64_t n = std::min(nbytes - done, length - in_range_);
      ARROW_ASSIGN_OR_RAISE(const int64_t got, file_->ReadAt(offset + in_range_, n,
                                                             static_cast<uint8_t*>(out) + done));
      if (got != n) return Status::IOError("the file is shorter than its metadata says");
      done += n;
      in_range_ += n;
      if (in_range_ == length) ++range_, in_range_ = 0;
    }
    pos_ += done;
    return done;
  }

  Result<std::shared_ptr<arrow::Buffer> > Read(int64_t nbytes) override {
    ARROW_ASSIGN_OR_RAISE(std::unique_ptr<arrow::ResizableBuffer> buf,
                          arrow::AllocateResizableBuffer(nbytes, pool()));
    ARROW_ASSIGN_OR_RAISE(const int64_t n, Read(nbytes, buf->mutable_data()));
    ARROW_RETURN_NOT_OK(buf->Resize(n, /*shrink_to_fit=*/false));
    return std::shared_ptr<arrow::Buffer>(std::move(buf));
  }

 private:
  std::shared_ptr<arrow::io::RandomAccessFile> file_;
  std::vector<std::pair<int64_t, int64_t> > ranges_;  // {offset, length}
  size_t range_ = 0;
  int64_t in_range_ = 0, pos_ = 0;
  bool closed_ = false;
};

// A stream that remembers where it last peeked: the page reader peeks at each page header before
// parsing it, so in the data-page filter that position is the page's header offset.
class PeekTrackingStream : public arrow::io::InputStream {
 public:
  explicit PeekTrackingStream(std::shared_ptr<arrow::io::InputStream> in) : in_(std::move(in)) {}
  int64_t last_peek() const { return last_peek_; }

  Status Close() override { return in_->Close(); }
  bool closed() const override { return in_->closed(); }
  Result<int64_t> Tell() const override { return in_->Tell(); }
  Result<int64_t> Read(int64_t nbytes, void* out) override { return in_->Read(nbytes, out); }
  Result<std::shared_ptr<arrow::Buffer> > Read(int64_t nbytes) override {
    return in_->Read(nbytes);
  }
  Result<std::string_view> Peek(int64_t nbytes) override {
    ARROW_ASSIGN_OR_RAISE(last_peek_, in_->Tell());
    return in_->Peek(nbytes);
  }

 private:
  std::shared_ptr<arrow::io::InputStream> in_;
  int64_t last_peek_ = -1;
};

std::shared_ptr<arrow::io::InputStream> buffered(std::shared_ptr<arrow::io::InputStream> raw) {
  PARQUET_ASSIGN_OR_THROW(
      auto stream, arrow::io::BufferedInputStream::Create(kStreamBuffer, pool(), std::move(raw)));
  return stream;
}

struct PageStart {
  int64_t offset;       // file offset of the page header
  int64_t values;       // values (levels) of the chunk before this page
  int64_t rows_before;  // rows of the chunk that start before this page
  bool dictionary;      // dictionary-encoded: reading it needs the chunk's dictionary page
};

struct Chunk {
  int64_t start = 0, end = 0;  // the column chunk's bytes, dictionary page included
  int64_t num_values = 0;
  parquet::Compression::type codec = parquet::Compression::UNCOMPRESSED;
  std::vector<PageStart> pages;  // data pages in order
};

struct Column {
  int leaf = -1;  // leaf column index; -1: the file has no such column
  const parquet::ColumnDescriptor* descr = nullptr;
  std::vector<Chunk> chunks;  // one per row group
};

class ParquetSource : public RecordSource {
 public:
  explicit ParquetSource(std::string path);

  const std::string& path() const override { return path_; }
  size_t size() const override { return static_cast<size_t>(num_rows_); }
  std::string location(size_t i) const override { return path_ + ":row " + std::to_string(i); }
  Record record(size_t i) const override;

 private:
  int find_column(const std::string& name, bool list_allowed) const;
  void index_chunk(const Column& column, int row_group, Chunk& chunk) const;
  // The values of row `row` of a row group's column (its list's elements for a list column). `null`
  // says a flat column's value is null. Throws (RowError or Arrow's exceptions) when the row cannot
  // be read.
  void read_row(const Column& column, int row_group, int64_t row, std::vector<std::string>& out,
                bool& null) const;

  std::string path_;
  std::shared_ptr<arrow::io::RandomAccessFile> file_;
  int64_t file_size_ = 0;
  std::shared_ptr<parquet::FileMetaData> meta_;
  parquet::ReaderProperties props_{pool()};
  std::vector<int64_t> group_first_row_;  // [row groups + 1]
  int64_t num_rows_ = 0;
  Column conversations_, images_;
};

// Why one row cannot be read (its record is skipped for it); not a failure of the dataset.
struct RowError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

void row_check(bool ok, const std::string& why) {
  if (!ok) throw RowError(why);
}

std::string what(const std::exception& e) {
  std::string s = e.what();
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

ParquetSource::ParquetSource(std::string path) : path_(std::move(path)) {
  require_regular_file(path_, "dataset");  // before opening: a FIFO would block
  arrow::Result<std::shared_ptr<arrow::io::ReadableFile> > file =
      arrow::io::ReadableFile::Open(path_, pool());
  MV_CHECK(file.ok(), "cannot open dataset ", path_, ": ", file.status().message());
  file_ = *file;
  const arrow::Result<int64_t> size = file_->GetSize();
  MV_CHECK(size.ok(), "cannot read dataset ", path_, ": ", size.status().message());
  file_size_ = *size;
  try {
    meta_ = parquet::ReadMetaData(file_);
  } catch (const std::exception& e) {
    MV_FAIL("dataset ", path_, " is not a readable parquet file: ", what(e));
  }
  // The footer's contents are not trusted: anything Arrow throws reading them names the file too.
  try {
    conversations_.leaf = find_column("conversations", false);
    MV_CHECK(
        conversations_.leaf >= 0, "dataset ", path_,
        ": no 'conversations' column (MiniMind-V's parquet layout: conversations, image_bytes)");
    images_.leaf = find_column("image_bytes", true);

    const int groups = meta_->num_row_groups();
    MV_CHECK(groups >= 0, "dataset ", path_, ": negative row-group count ", groups);
    group_first_row_.assign(1, 0);
    for (int g = 0; g < groups; ++g) {
      const int64_t rows = meta_->RowGroup(g)->num_rows();
      MV_CHECK(rows >= 0 && rows <= std::numeric_limits<int64_t>::max() - num_rows_, "dataset ",
               path_, ": row group ", g, " has an impossible row count ", rows);
      num_rows_ += rows;
      group_first_row_.push_back(num_rows_);
    }
    MV_CHECK(num_rows_ == meta_->num_rows(), "dataset ", path_, ": the row groups hold ", num_rows_,
             " rows, the footer says ", meta_->num_rows());
    for (Column* c : {&conversations_, &images_}) {
      if (c->leaf < 0) continue;
      c->descr = meta_->schema()->Column(c->leaf);
      c->chunks.resize(static_cast<size_t>(groups));
      for (int g = 0; g < groups; ++g) index_chunk(*c, g, c->chunks[static_cast<size_t>(g)]);
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    MV_FAIL("dataset ", path_, ": ", what(e));
  }
}

int ParquetSource::find_column(const std::string& name, bool list_allowed) const {
  const parquet::SchemaDescriptor& schema = *meta_->schema();
  int found = -1;
  for (int k = 0; k < schema.num_columns(); ++k) {
    if (schema.GetColumnRoot(k)->name() != name) continue;
    MV_CHECK(found < 0, "dataset ", path_, ": column '", name, "' must be binary",
             list_allowed ? " or a list of binary" : "", ", not a structure of several fields");
    found = k;
  }
  if (found < 0) return -1;
  const parquet::ColumnDescriptor& d = *schema.Column(found);
  const int max_rep = list_allowed ? 1 : 0;
  MV_CHECK(d.physical_type() == parquet::Type::BYTE_ARRAY && d.max_repetition_level() <= max_rep,
           "dataset ", path_, ": column '", name, "' must be binary or string",
           list_allowed ? " or a list of binary" : "", ", not physical type ",
           parquet::TypeToString(d.physical_type()), " at repetition level ",
           d.max_repetition_level());
  return found;
}

void ParquetSource::index_chunk(const Column& column, int row_group, Chunk& chunk) const {
  const parquet::ColumnDescriptor& descr = *column.descr;
  const std::string where = "dataset " + path_ + ": column '" + descr.path()->ToDotString() +
                            "' of row group " + std::to_string(row_group);
  const std::unique_ptr<parquet::RowGroupMetaData> group = meta_->RowGroup(row_group);
  const std::unique_ptr<parquet::ColumnChunkMetaData> meta = group->ColumnChunk(column.leaf);
  MV_CHECK(meta->file_path().empty(), where, " lives in another file (", meta->file_path(),
           "), which is not supported");
  int64_t start = meta->data_page_offset();
  if (meta->has_dictionary_page() && meta->dictionary_page_offset() > 0)
    start = std::min(start, meta->dictionary_page_offset());
  const int64_t size = meta->total_compressed_size();
  MV_CHECK(start >= 4 && size > 0 && size <= file_size_ && start <= file_size_ - size, where,
           ": its bytes [", start, ", +", size, ") lie outside the file of ", file_size_, " bytes");
  MV_CHECK(meta->num_values() >= 0, where, ": negative value count ", meta->num_values());
  chunk.start = start;
  chunk.end = start + size;
  chunk.num_values = meta->num_values();
  chunk.codec = meta->compression();

  const int16_t max_rep = descr.max_repetition_level();
  int64_t values = 0, rows = 0;
  try {
    auto tracker = std::make_shared<PeekTrackingStream>(
        buffered(std::make_shared<RangesStream>(file_, std::vector{std::pair{start, size}})));
    std::unique_ptr<parquet::PageReader> pages =
        parquet::PageReader::Open(tracker, chunk.num_values, chunk.codec, props_, descr);
    parquet::LevelDecoder levels;
    std::vector<int16_t> rep(4096);
    while (const std::shared_ptr<parquet::Page> page = pages->NextPage()) {
      const parquet::PageType::type type = page->type();
      if (type != parquet::PageType::DATA_PAGE && type != parquet::PageType::DATA_PAGE_V2)
        continue;  // the dictionary page
      const auto& data = static_cast<const parquet::DataPage&>(*page);
      MV_CHECK(data.num_values() >= 0, where, ": a data page with ", data.num_values(), " values");
      const bool dictionary = data.encoding() == parquet::Encoding::RLE_DICTIONARY ||
                              data.encoding() == parquet::Encoding::PLAIN_DICTIONARY;
      chunk.pages.push_back({start + tracker->last_peek(), values, rows, dictionary});
      values += data.num_values();
      if (max_rep == 0) {
        rows += data.num_values();
      } else if (type == parquet::PageType::DATA_PAGE_V2) {
        const auto& v2 = static_cast<const parquet::DataPageV2&>(data);
        MV_CHECK(v2.num_rows() >= 0, where, ": a data page with ", v2.num_rows(), " rows");
        rows += v2.num_rows();
      } else {  // a list column's V1 page: its rows are its repetition levels of 0
        const auto& v1 = static_cast<const parquet::DataPageV1&>(data);
        levels.SetData(v1.repetition_level_encoding(), max_rep, v1.num_values(), v1.data(),
                       v1.size());
        for (int left = v1.num_values(); left > 0;) {
          const int n =
              levels.Decode(std::min<int>(left, static_cast<int>(rep.size())), rep.data());
          MV_CHECK(n > 0, where, ": a data page ends before its repetition levels");
          rows += std::count(rep.begin(), rep.begin() + n, int16_t{0});
          left -= n;
        }
      }
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    MV_FAIL(where, ": ", what(e));
  }
  MV_CHECK(values == chunk.num_values, where, ": its pages hold ", values,
           " values, its metadata says ", chunk.num_values);
  MV_CHECK(rows == group->num_rows(), where, ": its pages hold ", rows, " rows, the row group has ",
           group->num_rows());
}

void ParquetSource::read_row(const Column& column, int row_group, int64_t row,
                             std::vector<std::string>& out, bool& null) const {
  const Chunk& chunk = column.chunks[static_cast<size_t>(row_group)];
  // The page row `row` starts in: the last with rows_before ≤ row (pages in which no row starts
  // share their successor's rows_before and come before it).
  const auto it = std::upper_bound(chunk.pages.begin(), chunk.pages.end(), row,
                                   [](int64_t r, const PageStart& p) { return r < p.rows_before; });
  row_check(it != chunk.pages.begin(), "the row lies before its column chunk's first page");
  const PageStart& page = *(it - 1);
  std::vector<std::pair<int64_t, int64_t> > ranges;
  const int64_t first_page = chunk.pages.front().offset;
  if (page.offset == first_page) {
    ranges.emplace_back(chunk.start, chunk.end - chunk.start);
  } else {
    if (page.dictionary && first_page > chunk.start)  // the dictionary page
      ranges.emplace_back(chunk.start, first_page - chunk.start);
    ranges.emplace_back(page.offset, chunk.end - page.offset);
  }
  std::unique_ptr<parquet::PageReader> pages =
      parquet::PageReader::Open(buffered(std::make_shared<RangesStream>(file_, std::move(ranges))),
                                chunk.num_values - page.values, chunk.codec, props_, *column.descr);
  const std::shared_ptr<parquet::ColumnReader> base =
      parquet::ColumnReader::Make(column.descr, std::move(pages), pool());
  auto& reader = static_cast<parquet::ByteArrayReader&>(*base);

  const int16_t max_def = column.descr->max_definition_level();
  const int64_t skip = row - page.rows_before;
  null = false;
  if (column.descr->max_repetition_level() == 0) {
    row_check(reader.Skip(skip) == skip, "the column ends before the row");
    int16_t def = max_def;
    parquet::ByteArray value;
    int64_t got = 0;
    row_check(reader.ReadBatch(1, &def, nullptr, &value, &got) == 1,
              "the column ends before the row");
    if (got == 1)
      out.emplace_back(reinterpret_cast<const char*>(value.ptr), value.len);
    else
      null = true;
    return;
  }
  // A list: its levels, until the next row starts. A level below max_def is a null or empty list
  // (no image), or a null element (max_def − 1 where elements are optional).
  const bool optional_element = column.descr->schema_node()->is_optional();
  constexpr int64_t kBatch = 64;
  int16_t defs[kBatch], reps[kBatch];
  parquet::ByteArray values[kBatch];
  int64_t starts = 0;
  bool in_row = false;
  for (;;) {
    int64_t got = 0;
    const int64_t n = reader.ReadBatch(kBatch, defs, reps, values, &got);
    if (n == 0) break;
    int64_t v = 0;
    for (int64_t k = 0; k < n; ++k) {
      if (reps[k] == 0) {
        if (in_row) return;
        if (++starts == skip + 1) in_row = true;
      }
      const bool present = defs[k] == max_def;
      if (in_row) {
        if (present) {
          out.emplace_back(reinterpret_cast<const char*>(values[v].ptr), values[v].len);
        } else if (optional_element && defs[k] == max_def - 1) {
          throw RowError("image " + std::to_string(out.size() + 1) + " of the list is null");
        }
      }
      if (present) ++v;
    }
  }
  row_check(in_row, "the column ends before the row");
}

Record ParquetSource::record(size_t i) const {
  MV_CHECK(i < size(), path_, ": row ", i, " out of range (", size(), " rows)");
  const int64_t row = static_cast<int64_t>(i);
  const int group =
      static_cast<int>(std::upper_bound(group_first_row_.begin(), group_first_row_.end(), row) -
                       group_first_row_.begin() - 1);
  const int64_t in_group = row - group_first_row_[static_cast<size_t>(group)];
  Record r;
  r.text_is_conversations = true;
  const char* column = "conversations";
  try {
    std::vector<std::string> text;
    bool null = false;
    read_row(conversations_, group, in_group, text, null);
    if (null || text.empty()) {
      r.error = "'conversations' is null";
      return r;
    }
    r.text = std::move(text.front());
    if (images_.leaf >= 0) {
      column = "image_bytes";
      read_row(images_, group, in_group, r.image_bytes, null);
      // An empty blob is no image (as a null one is).
      r.image_bytes.erase(std::remove_if(r.image_bytes.begin(), r.image_bytes.end(),
                                         [](const std::string& b) { return b.empty(); }),
                          r.image_bytes.end());
    }
  } catch (const std::exception& e) {
    Record bad;
    bad.text_is_conversations = true;
    bad.error = std::string("unreadable '") + column + "' value (" + what(e) + ")";
    return bad;
  }
  return r;
}

}  // namespace

std::unique_ptr<RecordSource> open_parquet_source(const std::string& path) {
  return std::make_unique<ParquetSource>(path);
}

#endif

}  // namespace minivlm
