// LibTorch view of safetensors checkpoints: a TensorStore maps every tensor of one file, or of a
// sharded checkpoint (model.safetensors.index.json), as torch::Tensor views into the memory maps
// (no copy; valid while the store lives). save_tensors writes named tensors as one file.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "worker/model/safetensors.h"

namespace sweep::model {

class TensorStore {
 public:
  // A single .safetensors file.
  static TensorStore open_file(const std::string& path);
  // A model directory: model.safetensors.index.json (sharded) or model.safetensors. Throws naming
  // the directory when neither exists or a shard listed in the index is missing.
  static TensorStore open_dir(const std::string& dir);

  // name -> CPU tensor viewing the mapped bytes (read-only: clone before writing into it).
  const std::map<std::string, torch::Tensor>& tensors() const { return tensors_; }
  std::string describe() const { return source_; }

 private:
  void add_file(const std::string& path);
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, torch::Tensor> tensors_;
  std::string source_;
};

torch::ScalarType to_torch_dtype(DType d);  // throws for dtypes LibTorch lacks
DType from_torch_dtype(torch::ScalarType t);

// Writes tensors (moved to CPU, made contiguous) in the given order; atomic (temp + rename).
void save_tensors(const std::string& path,
                  const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                  const std::map<std::string, std::string>& metadata = {});

}  // namespace sweep::model
