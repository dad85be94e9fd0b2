// `sweep-worker predict --model DIR [--adapter CKPT] [--image IMG] --prompt TEXT`: the greedy
// answer of a model (optionally with a checkpoint on top) to one question, on stdout.
#include <iostream>

#include <torch/torch.h>

#include "data/conversation.h"
#include "data/image.h"
#include "data/preprocess.h"
#include "data/tokenizer.h"
#include "worker/commands/commands.h"
#include "worker/train/collate.h"
#include "worker/train/model_setup.h"
#include "worker/train/tool_args.h"

namespace sweep::worker {
namespace {

constexpr const char* kUsage =
    "usage: sweep-worker predict --model DIR [--adapter CKPT] [--image IMG] --prompt TEXT "
    "[--max-new-tokens N] [--threads N] [--device cpu|cuda]";

}  // namespace

int cmd_predict(const Args& args) {
  return train::run_tool("predict", [&]() -> int {
    train::ToolArgs a(
        "predict", args,
        {"model", "adapter", "image", "prompt", "max-new-tokens", "threads", "device"}, kUsage);
    const std::string model_dir = a.required("model"), prompt = a.required("prompt");
    const std::string image = a.get("image");
    torch::set_num_threads(a.get_int("threads", 1));
    const torch::Device device = train::resolve_device(a.get("device", "cpu"));
    model::LlavaForConditionalGeneration m = train::load_model_with_checkpoint(
        model_dir, a.get("adapter"), train::resolve_base_dtype("auto", device), device);
    m->eval();
    data::Tokenizer tok = data::Tokenizer::load(model_dir);

    data::Sample s;
    s.image = image;
    s.conversations.push_back(
        {"human", image.empty() ? prompt : std::string(data::kImageToken) + "\n" + prompt});
    data::PromptAndAnswer pa = data::first_round_prompt(s, tok, !image.empty());
    torch::Tensor pixels;
    if (!image.empty()) {
      const int size = m->config().image_size();
      pixels = train::pixels_to_tensor(
          data::clip_preprocess(data::decode_image(image), size, /*pad_to_square=*/true), size,
          device);
    }
    std::vector<int64_t> out =
        m->generate(pa.prompt_ids, pixels, a.get_int("max-new-tokens", 32), tok.eos_id());
    std::cout << tok.decode(out) << "\n";
    return kExitOk;
  });
}

}  // namespace sweep::worker
