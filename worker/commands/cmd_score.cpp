// `sweep-worker score --model DIR [--adapter CKPT] --data DATA.json --image-folder DIR`: one JSON
// line per sample (id, loss, tokens, token_acc, exact_match, prediction, answer), then a summary
// line {"summary": true, val_loss, val_token_acc, val_exact_match, val_samples}.
#include <iostream>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "data/llava_json.h"
#include "data/max_length.h"
#include "data/tokenizer.h"
#include "protocol/train_params.h"
#include "worker/commands/commands.h"
#include "worker/train/evaluator.h"
#include "worker/train/model_setup.h"
#include "worker/train/tool_args.h"

namespace sweep::worker {
namespace {

constexpr const char* kUsage =
    "usage: sweep-worker score --model DIR [--adapter CKPT] --data DATA.json --image-folder DIR "
    "[--max-new-tokens N] [--max-length N] [--batch-size N] [--threads N] [--device cpu|cuda] "
    "[--precision auto|fp32|bf16]";

}  // namespace

int cmd_score(const Args& args) {
  return train::run_tool("score", [&]() -> int {
    train::ToolArgs a("score", args,
                      {"model", "adapter", "data", "image-folder", "max-new-tokens", "max-length",
                       "batch-size", "threads", "device", "precision"},
                      kUsage);
    const std::string model_dir = a.required("model");
    torch::set_num_threads(a.get_int("threads", 1));
    const torch::Device device = train::resolve_device(a.get("device", "cpu"));
    model::LlavaForConditionalGeneration m = train::load_model_with_checkpoint(
        model_dir, a.get("adapter"), train::resolve_base_dtype(a.get("precision", "auto"), device),
        device);
    data::Tokenizer tok = data::Tokenizer::load(model_dir);

    const TrainParams job_defaults;  // score as a job's evaluation does unless told otherwise
    train::EvalOptions eo;
    eo.image_folder = a.required("image-folder");
    eo.image_size = m->config().image_size();
    eo.max_length = data::resolve_max_length(a.get_int("max-length", job_defaults.model_max_length),
                                             m->config().text.max_position_embeddings)
                        .value;
    eo.max_new_tokens = a.get_int("max-new-tokens", job_defaults.max_new_tokens);
    eo.batch_size = a.get_int("batch-size", job_defaults.batch_size);
    train::Evaluator evaluator(data::load_llava_json(a.required("data")), tok, eo);
    std::vector<train::SampleScore> scores;
    train::EvalResult r = evaluator.run(m, &scores);
    for (const auto& s : scores) {
      nlohmann::json line = {{"id", s.id},
                             {"loss", s.loss},
                             {"tokens", s.tokens},
                             {"token_acc", s.tokens ? double(s.correct) / s.tokens : 0.0},
                             {"exact_match", s.exact_match},
                             {"prediction", s.prediction},
                             {"answer", s.answer}};
      std::cout << line.dump() << "\n";
    }
    nlohmann::json summary = r.to_json();
    summary["summary"] = true;
    std::cout << summary.dump() << "\n";
    return kExitOk;
  });
}

}  // namespace sweep::worker
