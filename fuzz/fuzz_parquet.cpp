// Parquet datasets in MiniMind-V's layout: open (footer, schema, the page index pass) and read
// every row's record (conversations text and image blobs) through the page-level reader.
#include "core/error.h"
#include "data/parquet_source.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace minivlm;
  const std::string& path = fuzz::write_scratch(data, size, "parquet");
  try {
    const std::unique_ptr<RecordSource> source = open_parquet_source(path);
    size_t sum = 0;
    for (size_t i = 0; i < source->size() && i < 256; ++i) {
      const Record r = source->record(i);
      sum += r.text.size() + r.error.size() + source->location(i).size();
      for (const std::string& blob : r.image_bytes) sum += blob.empty() ? 0 : blob.back();
    }
    volatile size_t sink = sum;
    (void)sink;
  } catch (const Error&) {
  }
  return 0;
}
