#include "worker/model/projector.h"

#include <torch/nn/functional/activation.h>
#include <torch/version.h>

namespace sweep::model {

MultiModalProjectorImpl::MultiModalProjectorImpl(int64_t vision_hidden, int64_t text_hidden,
                                                 std::string act)
    : act_(std::move(act)) {
  linear_1 = register_module("linear_1", LoraLinear(vision_hidden, text_hidden, /*bias=*/true));
  linear_2 = register_module("linear_2", LoraLinear(text_hidden, text_hidden, /*bias=*/true));
}

torch::Tensor MultiModalProjectorImpl::forward(const torch::Tensor& x) {
  auto h = linear_1->forward(x.to(linear_1->weight.scalar_type()));
  if (act_ == "gelu") {
    h = torch::gelu(h);
  } else if (act_ == "gelu_pytorch_tanh") {
#if TORCH_VERSION_MAJOR > 1 || TORCH_VERSION_MINOR >= 12
    h = torch::gelu(h, "tanh");
#else
    h = 0.5 * h * (1 + torch::tanh(0.7978845608028654 * (h + 0.044715 * h.pow(3))));
#endif
  } else if (act_ == "relu") {
    h = torch::relu(h);
  } else {
    h = torch::silu(h);
  }
  return linear_2->forward(h);
}

}  // namespace sweep::model
