// MiniMind-V's parquet datasets (pretrain_i2t.parquet, sft_i2t.parquet) as a record source
// (SPEC §4.1): one record per row; `conversations` is a JSON string of [{role, content}] (binary or
// string), `image_bytes` the row's encoded image (binary) or images (a list of binary), null or
// empty for a text-only row. Other columns are ignored; without an `image_bytes` column every row
// is text-only.
//
// The reader is Apache Arrow's C++ parquet library (built from PyPI's pyarrow wheel, see
// CMakeLists.txt). Memory stays flat whatever the file's size and row-group layout: opening reads
// the footer and streams each column chunk once, keeping only where each data page starts and how
// many rows begin before it (about 32 bytes per page); reading row i decodes only the page it
// starts in (and the chunk's dictionary page when that page is dictionary-encoded) from a bounded
// buffered stream, never a whole row group or column chunk. Any codec the library reads (snappy,
// zstd, gzip, lz4, brotli, uncompressed) and data page V1 and V2 work. Record i is row i of the
// file (0-based, row groups in order).
#pragma once
#include <memory>
#include <string>

#include "data/record_source.h"

namespace minivlm {

// Whether this build has the parquet reader (it needs pyarrow at configure time).
bool parquet_supported();

// Opens and indexes `path`. Throws minivlm::Error naming the path when the file cannot be read,
// is not parquet, lacks a `conversations` column, or a column has the wrong type (conversations:
// BYTE_ARRAY; image_bytes: BYTE_ARRAY or a list of BYTE_ARRAY), or when this build has no parquet
// reader. A row that cannot be decoded later is a record with `error` set, not an exception.
std::unique_ptr<RecordSource> open_parquet_source(const std::string& path);

}  // namespace minivlm
