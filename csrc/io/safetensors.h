// safetensors: read (mmap) and write (SPEC §1.6).
//
// File layout: u64 little-endian header length N, N bytes of JSON
// {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}, padded with
// spaces to a multiple of 8, then the data; offsets are relative to the end of the header, and the
// tensors cover the data region contiguously without gaps or overlaps.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace minivlm {

class SafeTensorsFile {
 public:
  // Maps `path` and validates header, dtypes, shapes, offsets and file length; throws minivlm::Error
  // naming the file and what is wrong.
  static SafeTensorsFile open(const std::string& path);

  const std::vector<std::string>& names() const;  // in file order
  bool contains(const std::string& name) const;
  DType dtype(const std::string& name) const;
  const Shape& shape(const std::string& name) const;
  // A CPU tensor viewing the mapped bytes (zero-copy; keeps the mapping alive; read-only use).
  Tensor get(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const;
  const std::string& path() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

// Writes tensors (any device, any strides; stored contiguous in their dtype) in the given order,
// to `path` + ".tmp", fsync, then rename to `path` (a kill leaves no half-written `path`).
void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace minivlm
