#include "worker/train/collate.h"

#include <cstring>
#include <stdexcept>

namespace sweep::train {

torch::Tensor pixels_to_tensor(const std::vector<float>& pixels, int64_t image_size,
                               torch::Device device) {
  if (pixels.empty()) return {};
  const int64_t S = image_size;
  if (static_cast<int64_t>(pixels.size()) != 3 * S * S)
    throw std::runtime_error("image has " + std::to_string(pixels.size()) +
                             " values, expected 3 x " + std::to_string(S) + " x " +
                             std::to_string(S));
  torch::Tensor t = torch::empty({3, S, S}, torch::kFloat32);  // (3, S, S)
  std::memcpy(t.data_ptr<float>(), pixels.data(), pixels.size() * sizeof(float));
  return t.to(device);
}

model::MultimodalInputs collate(const std::vector<data::LoadedSample>& batch, int64_t image_size,
                                torch::Device device) {
  const int64_t B = static_cast<int64_t>(batch.size()), S = image_size;
  model::MultimodalInputs in;
  in.pixel_values = torch::zeros({B, 3, S, S}, torch::kFloat32);  // (B, 3, S, S)
  for (int64_t i = 0; i < B; ++i) {
    const data::LoadedSample& s = batch[i];
    in.input_ids.push_back(s.tokens.input_ids);
    in.labels.push_back(s.tokens.labels);
    const bool has_image = s.tokens.has_image && !s.pixels.empty();
    in.has_image.push_back(has_image);
    if (!has_image) continue;
    if (static_cast<int64_t>(s.pixels.size()) != 3 * S * S)
      throw std::runtime_error("sample " + s.id + ": image has " + std::to_string(s.pixels.size()) +
                               " values, expected 3 x " + std::to_string(S) + " x " +
                               std::to_string(S) + " (image_size of the model's vision config)");
    std::memcpy(in.pixel_values[i].data_ptr<float>(), s.pixels.data(),
                s.pixels.size() * sizeof(float));
  }
  in.pixel_values = in.pixel_values.to(device);
  return in;
}

}  // namespace sweep::train
